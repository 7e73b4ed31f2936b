"""The fixed recipe every model gets: train, checkpoint, evaluate, metrics, schedule, callbacks, distributed. It calls only the model contract (ocrbench.models._base), never a model's name."""
