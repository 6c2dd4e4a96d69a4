"""Model families: the contract (:mod:`backend.families.base`) and one module per domain.

``molecules`` (QM9, relabelling atoms, the graph VAE) and ``images`` (rotated MNIST, rotating
images, the e2cnn and augmentation CNNs). A model on an existing domain needs one model file and
one :class:`~backend.families.base.ModelSpec`, here or in a user's package registered through the
``latent_explorer.models`` entry-point group (see :mod:`backend.registry`).
"""
