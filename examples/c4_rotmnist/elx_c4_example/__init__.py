"""Example plugin: a C_4 group CNN on rotated MNIST, registered through ``latent_explorer.models``.

``model.py`` is the network (pure torch), ``spec.py`` the one :class:`ModelSpec` the explorer
discovers, ``train.py`` the script that made the shipped weights in ``weights/``.
"""
