"""Training and fine-tuning Toto-architecture models: configuration, data, the loop, evaluation and
the model card of the embedded default model."""

__all__: list[str] = []
