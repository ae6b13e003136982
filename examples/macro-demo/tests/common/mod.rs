//! Checks shared by the tests: variables against the layer table, and the generated
//! module against resnetc's libtorch runtime.
#![allow(dead_code)]

use resnetc::span::{SourceFile, Syntax};
use resnetc::valid::{BnLayer, ConvLayer, Network};
use resnetc::{Compiled, Overrides};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// Held while drawing from libtorch's global random generator (initializing variables,
/// random batches, dropout): the runtime comparison seeds it so that dropout draws the
/// same mask in both networks, and tests run in parallel threads.
pub fn rng() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A network built on a fresh CPU VarStore.
pub fn build<M>(new: impl Fn(&nn::Path) -> M) -> (nn::VarStore, M) {
    let _rng = rng();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = new(&vs.root());
    (vs, net)
}

/// Compiles a spec (path relative to this crate, as the `#[resnet]` attributes give it).
pub fn compile(spec: &str, overrides: &Overrides) -> Compiled {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(spec);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = SourceFile::new(spec, text, Syntax::from_path(spec).expect("spec extension"));
    resnetc::compile_with(&file, overrides)
        .unwrap_or_else(|d| panic!("{}", resnetc::diag::render(&file, &d)))
}

/// Name -> (shape, trainable) of every variable the network implies: `weight`/`bias` of
/// convolutions, BN and `fc`, and BN running statistics (tch has no `num_batches_tracked`).
pub fn expected_variables(net: &Network) -> BTreeMap<String, (Vec<i64>, bool)> {
    let mut vars = BTreeMap::new();
    let mut conv = |c: &ConvLayer| {
        let k = c.kernel as i64;
        let shape = vec![
            c.out_channels as i64,
            (c.in_channels / c.groups) as i64,
            k,
            k,
        ];
        vars.insert(format!("{}.weight", c.name), (shape, true));
        if c.bias {
            vars.insert(
                format!("{}.bias", c.name),
                (vec![c.out_channels as i64], true),
            );
        }
    };
    net.convs().for_each(&mut conv);
    let bns: Vec<&BnLayer> = net.batch_norms().collect();
    for bn in bns {
        let c = vec![bn.channels as i64];
        vars.insert(format!("{}.weight", bn.name), (c.clone(), true));
        vars.insert(format!("{}.bias", bn.name), (c.clone(), true));
        vars.insert(format!("{}.running_mean", bn.name), (c.clone(), false));
        vars.insert(format!("{}.running_var", bn.name), (c, false));
    }
    if let Some(head) = &net.head {
        let fc = &head.fc;
        vars.insert(
            "fc.weight".into(),
            (vec![fc.out_features as i64, fc.in_features as i64], true),
        );
        vars.insert("fc.bias".into(), (vec![fc.out_features as i64], true));
    }
    vars
}

/// The VarStore holds exactly the variables of the layer table, with its shapes, and the
/// parameters of each table row and the totals add up.
pub fn check_variables(vs: &nn::VarStore, compiled: &Compiled) {
    let net = &compiled.network;
    let vars = vs.variables();
    let actual: BTreeMap<String, (Vec<i64>, bool)> = vars
        .iter()
        .map(|(name, t)| (name.clone(), (t.size(), t.requires_grad())))
        .collect();
    assert_eq!(
        actual,
        expected_variables(net),
        "variables of {}",
        compiled.model.name
    );

    // Every row of the layer table with parameters owns exactly the variables under its name.
    let mut by_module: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (name, t) in &vars {
        let module = name.rsplit_once('.').map_or(name.as_str(), |(m, _)| m);
        let entry = by_module.entry(module).or_default();
        let n = t.numel() as u64;
        if t.requires_grad() {
            entry.0 += n;
        } else {
            entry.1 += n;
        }
    }
    let rows: BTreeMap<&str, (u64, u64)> = net
        .layers
        .iter()
        .filter(|r| r.params > 0 || r.non_trainable > 0)
        .map(|r| (r.name.as_str(), (r.params, r.non_trainable)))
        .collect();
    assert_eq!(
        by_module, rows,
        "parameters per layer of {}",
        compiled.model.name
    );

    let trainable: u64 = vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as u64)
        .sum();
    assert_eq!(trainable, net.totals.trainable_params);
    let non_trainable: u64 = vars
        .values()
        .filter(|t| !t.requires_grad())
        .map(|t| t.numel() as u64)
        .sum();
    assert_eq!(non_trainable, net.totals.non_trainable_params);
}

/// A random input batch of `n` samples of `[c, h, w]`.
pub fn batch(n: i64, shape: [i64; 3]) -> Tensor {
    let _rng = rng();
    Tensor::randn(
        [n, shape[0], shape[1], shape[2]],
        (Kind::Float, Device::Cpu),
    )
}

/// Gives BN layers non-trivial affine parameters and running statistics, so an eval-mode
/// comparison exercises them.
pub fn randomize_batch_norms(vs: &nn::VarStore) {
    let _rng = rng();
    let vars = vs.variables();
    tch::no_grad(|| {
        for (name, t) in &vars {
            let Some((module, leaf)) = name.rsplit_once('.') else {
                continue;
            };
            let is_bn = vars.contains_key(&format!("{module}.running_mean"));
            let mut t = t.shallow_clone();
            match (is_bn, leaf) {
                (true, "weight" | "running_var") => {
                    let _ = t.uniform_(0.5, 1.5);
                }
                (true, "bias" | "running_mean") => {
                    let _ = t.uniform_(-0.2, 0.2);
                }
                _ => {}
            }
        }
    });
}

/// Largest absolute difference, relative to the larger magnitude (at least 1).
pub fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    let scale = a.abs().max().double_value(&[]).max(1.0);
    (a - b).abs().max().double_value(&[]) / scale
}

/// Builds the generated module and resnetc's runtime graph on separate VarStores with the
/// same values, and checks they give the same outputs, in eval and train mode, and
/// update the BN running statistics alike.
pub fn check_against_runtime<M: ModuleT>(
    new: impl Fn(&nn::Path) -> M,
    compiled: &Compiled,
    input: [i64; 3],
) {
    let name = &compiled.model.name;
    let (runtime_vs, runtime) = build(|p| {
        resnetc::runtime::ResNet::new(p, compiled).expect("the runtime builds every checked spec")
    });
    randomize_batch_norms(&runtime_vs);
    let (mut generated_vs, generated) = build(new);
    // The runtime's store has `num_batches_tracked` besides: copy into the generated one.
    generated_vs
        .copy(&runtime_vs)
        .expect("the runtime has every generated variable");

    let x = batch(3, input);
    for train in [false, true, false] {
        let (a, b) = if train {
            // Same seed, same dropout mask.
            let _rng = rng();
            tch::manual_seed(11);
            let a = generated.forward_t(&x, train);
            tch::manual_seed(11);
            (a, runtime.forward_t(&x, train))
        } else {
            (generated.forward_t(&x, train), runtime.forward_t(&x, train))
        };
        let d = max_diff(&a, &b);
        assert!(
            d <= 1e-5,
            "{name}: generated and runtime differ by {d} (train = {train})"
        );
    }
    // Train mode moved the running statistics the same way in both.
    let rt = runtime_vs.variables();
    for (var, t) in generated_vs.variables() {
        let d = max_diff(&t, &rt[&var]);
        assert!(
            d <= 1e-6,
            "{name}: {var} differs by {d} after training-mode passes"
        );
    }
}

/// Two builds of the same network (the `#[resnet]` expansion and the `resnetc build`
/// file) create the same variables and, given the same values, the same outputs.
pub fn check_same_network<A: ModuleT, B: ModuleT>(
    build_a: impl Fn(&nn::Path) -> A,
    build_b: impl Fn(&nn::Path) -> B,
    input: [i64; 3],
) {
    let (vs_a, a) = build(build_a);
    randomize_batch_norms(&vs_a);
    let (mut vs_b, b) = build(build_b);
    let shapes = |vs: &nn::VarStore| -> BTreeMap<String, Vec<i64>> {
        vs.variables()
            .into_iter()
            .map(|(name, t)| (name, t.size()))
            .collect()
    };
    assert_eq!(shapes(&vs_a), shapes(&vs_b));
    vs_b.copy(&vs_a).expect("same variables");
    let x = batch(2, input);
    let d = max_diff(&a.forward_t(&x, false), &b.forward_t(&x, false));
    assert!(d == 0.0, "the two builds differ by {d}");
}
