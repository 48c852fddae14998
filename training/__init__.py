"""The recurrent adversarial talking-face generator: model, losses, data, training, inference, metrics.

One module per network (``audio_encoder``, ``image_encoder``, ``generator``,
``decoder``, ``discriminator``), config as dataclasses (``config``), a compact
loop (``train``) over shards streamed by ``data`` from a folder or object
storage through :mod:`warehouse.features`; ``export``, ``generate`` and
``metrics`` for inference and evaluation. Uses ``pipeline``'s audio, MFCC and
video functions so that generation computes features exactly as the corpus did.
"""
