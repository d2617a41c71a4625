"""Model zoo: a registry of small CNN factories.

Use :func:`create_model` with one of :func:`list_models` (``alexnet``, ``lenet5``, ``mobilenetv2``, ``resnet20``,
``resnet56``, ``vgg16``, ``vgg16-224``) or ``timm:NAME`` / ``torchvision:NAME``;
:func:`model_entry` tells the input size a model expects.
"""

from intrain.models import alexnet, lenet, mobilenet, resnet, vgg  # noqa: F401  (imported to register the models)
from intrain.models.init import init_weights
from intrain.models.registry import ModelEntry, create_model, list_models, model_entry, register_model

__all__ = ["ModelEntry", "create_model", "init_weights", "list_models", "model_entry", "register_model"]
