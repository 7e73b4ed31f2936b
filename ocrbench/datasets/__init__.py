"""One file per dataset (synthetic lines/pages, EMNIST, IAM, ALTO/PAGE folders, downloadable collections); assets/ vendors only registry-sourced files."""
