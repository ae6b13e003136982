//! Shape checking.
use crate::diag::Diagnostic;
use crate::ir::Model;
use crate::lower::SpanTable;

#[derive(Clone, Debug)]
pub struct Network {
    pub totals: Totals,
}
#[derive(Clone, Debug)]
pub struct Totals {
    pub trainable_params: u64,
}

pub fn validate(model: &Model, spans: &SpanTable) -> Result<(Network, Vec<Diagnostic>), Vec<Diagnostic>> {
    let _ = (model, spans);
    todo!()
}
