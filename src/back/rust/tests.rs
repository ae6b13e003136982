//! Checks of the generator against the checked network of every shipped spec.
