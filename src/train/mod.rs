//! Training on libtorch (feature `torch`): data sets, loader, SGD, schedules, metrics,
//! curves and checkpoints for `resnetc train` and `resnetc eval`.
