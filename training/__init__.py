"""The recurrent adversarial talking-face generator: model, losses, data, training, inference, metrics."""
