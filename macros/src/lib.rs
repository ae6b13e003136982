//! `#[resnet(spec = "...")]`: filled in by the code-generation work.
