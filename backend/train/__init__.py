"""Training: one shared loop and a step per model family.

* :mod:`backend.train.loop` -- the loop both training commands run (epoch order, learning-rate
  schedule, tqdm logging, early stop by wall clock, periodic hooks, checkpoint and resume,
  atomic weights and JSON sidecar);
* :mod:`backend.train.qm9` -- the graph VAE on QM9 (``python -m backend train qm9``);
* :mod:`backend.train.rotmnist` -- the e2cnn C_N model and the augmentation CNN on rotated MNIST
  (``python -m backend train rotmnist`` / ``augcnn``), with their test metrics.

A new model family adds one module here: build the model, the optimizer and a step function
``step(idx, step) -> dict of losses``, call :func:`backend.train.loop.run`, then write the
weights and the sidecar with :func:`~backend.train.loop.save_weights` and
:func:`~backend.train.loop.write_sidecar`.
"""
