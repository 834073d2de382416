"""zoo's own plugins: torchvision and timm support, through the same hook third parties use."""
