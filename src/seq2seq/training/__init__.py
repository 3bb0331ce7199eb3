"""Training with Lightning: the LightningModule, its data module, callbacks, hardware settings, resuming."""
