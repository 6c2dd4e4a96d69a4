"""Older import path of the rotated-MNIST training: see :mod:`backend.train.rotmnist`."""

from backend.train.rotmnist import (N_REFERENCE, RotTrainConfig, build_model, encode_images,  # noqa: F401
                                    equivariance_errors, load_data, load_upright, orbit_spread,
                                    rot_mnist_metrics, train_rot_mnist, _equivariance_regularised_loss)
