//! The YAML document as serde sees it: one private struct per section, every field an
//! optional [`Spanned`] value so that [`super::convert`] can give each AST node its place.
//!
//! Unknown keys are rejected here (`deny_unknown_fields`); the `expected` list serde
//! reports with them is one of the `*_KEYS` constants below, which is how
//! [`super::errors`] names the section a stray key was found in.
//!
//! Every field is read even when its value is null (`key: ~`, `key:`), so that
//! [`super::convert`] reports the null instead of taking it for a key left out.
//!
//! Keyword fields (`block`, `shortcut`, `stride_on`, ...) are plain `String`s:
//! serde-saphyr hands any non-null scalar to a string field as written, so
//! `stride_on: v1.5` or `shortcut: yes` reach lowering as text, which then checks them
//! against the keyword lists with a "did you mean".

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::fmt;

/// Keys of the top level.
pub const ROOT_KEYS: &[&str] = &[
    "name",
    "input",
    "stem",
    "defaults",
    "stages",
    "head",
    "init",
    "zero_init_residual",
    "batch_norm",
    "norm",
    "drop_path_rate",
    "features",
];
/// Keys of the mapping form of `input`.
pub const INPUT_KEYS: &[&str] = &["channels", "height", "width"];
pub const STEM_KEYS: &[&str] = &["conv", "convs", "bn", "relu", "pool"];
pub const CONV_KEYS: &[&str] = &["filters", "kernel", "stride", "padding", "bias"];
pub const POOL_KEYS: &[&str] = &[
    "kind",
    "kernel",
    "stride",
    "padding",
    "ceil_mode",
    "anti_alias",
    "filters",
    "bias",
];
/// Keys of the mapping form of the top-level `norm`.
pub const NORM_KEYS: &[&str] = &["kind", "groups"];
/// Keys of the mapping form of `attention`.
pub const ATTENTION_KEYS: &[&str] = &["kind", "reduction", "divisor", "gamma", "beta"];
pub const OPTIONS_KEYS: &[&str] = &[
    "block",
    "stride_on",
    "shortcut",
    "projection",
    "groups",
    "width_per_group",
    "bias",
    "attention",
    "anti_alias",
    "stride_at",
    "dilation",
];
pub const PROJECTION_KEYS: &[&str] = &["bn", "bias", "kernel", "pool"];
pub const STAGE_KEYS: &[&str] = &[
    "stage",
    "repeat",
    "filters",
    "stride",
    "block",
    "stride_on",
    "shortcut",
    "projection",
    "groups",
    "width_per_group",
    "bias",
    "attention",
    "anti_alias",
    "stride_at",
    "dilation",
];
pub const HEAD_KEYS: &[&str] = &[
    "norm",
    "pool",
    "dropout",
    "in_features",
    "classes",
    "softmax",
];
pub const BATCH_NORM_KEYS: &[&str] = &["eps", "momentum"];

/// Where a list of accepted keys applies, as a phrase ("in stage", "at the top level"),
/// for "unknown key `x` <where>".
pub fn section_of(expected: &[&str]) -> &'static str {
    const SECTIONS: &[(&[&str], &str)] = &[
        (ROOT_KEYS, "at the top level"),
        (INPUT_KEYS, "in input"),
        (STEM_KEYS, "in stem"),
        (CONV_KEYS, "in stem.conv"),
        (POOL_KEYS, "in stem.pool"),
        (OPTIONS_KEYS, "in defaults"),
        (PROJECTION_KEYS, "in projection"),
        (STAGE_KEYS, "in stage"),
        (HEAD_KEYS, "in head"),
        (BATCH_NORM_KEYS, "in batch_norm"),
        (NORM_KEYS, "in norm"),
        (ATTENTION_KEYS, "in attention"),
    ];
    SECTIONS
        .iter()
        .find(|(keys, _)| *keys == expected)
        .map_or("in this mapping", |(_, name)| name)
}

/// A key's value: `None` when the key is left out; otherwise its place and value, where
/// `None` is a YAML null (`~`, `null`, or nothing after the colon), which the converter
/// reports (null could mean "nothing" as well as "the default").
pub type Entry<T> = Option<Spanned<Option<T>>>;

/// Reads a key that is present as `Some`, null included (serde's own `Option` handling
/// would take a null for a missing key).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootRepr {
    #[serde(default, deserialize_with = "present")]
    pub name: Entry<String>,
    #[serde(default, deserialize_with = "present")]
    pub input: Entry<InputRepr>,
    #[serde(default, deserialize_with = "present")]
    pub stem: Entry<StemRepr>,
    #[serde(default, deserialize_with = "present")]
    pub defaults: Entry<OptionsRepr>,
    #[serde(default, deserialize_with = "present")]
    pub stages: Entry<Vec<Spanned<StageRepr>>>,
    #[serde(default, deserialize_with = "present")]
    pub head: Entry<HeadRepr>,
    #[serde(default, deserialize_with = "present")]
    pub init: Entry<String>,
    #[serde(default, deserialize_with = "present")]
    pub zero_init_residual: Entry<bool>,
    #[serde(default, deserialize_with = "present")]
    pub batch_norm: Entry<BatchNormRepr>,
    #[serde(default, deserialize_with = "present")]
    pub norm: Entry<KindOr<NormMapRepr>>,
    #[serde(default, deserialize_with = "present")]
    pub drop_path_rate: Entry<f64>,
    #[serde(default, deserialize_with = "present")]
    pub features: Entry<Vec<Spanned<String>>>,
}

/// A keyword (`norm: batch`, `attention: se`) or a mapping with the kind and its numbers;
/// any scalar is kept as written, for lowering to check against the keywords.
pub enum KindOr<M> {
    Kind(String),
    Map(M),
}

impl<'de, M: Deserialize<'de>> Deserialize<'de> for KindOr<M> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KindVisitor<M>(std::marker::PhantomData<M>);

        impl<'de, M: Deserialize<'de>> Visitor<'de> for KindVisitor<M> {
            type Value = KindOr<M>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a keyword or a mapping with `kind`")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<KindOr<M>, E> {
                Ok(KindOr::Kind(v.to_owned()))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<KindOr<M>, E> {
                Ok(KindOr::Kind(v.to_string()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KindOr<M>, E> {
                Ok(KindOr::Kind(v.to_string()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KindOr<M>, E> {
                Ok(KindOr::Kind(v.to_string()))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<KindOr<M>, E> {
                Ok(KindOr::Kind(v.to_string()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<KindOr<M>, A::Error> {
                M::deserialize(de::value::MapAccessDeserializer::new(map)).map(KindOr::Map)
            }
        }

        deserializer.deserialize_any(KindVisitor(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormMapRepr {
    #[serde(default, deserialize_with = "present")]
    pub kind: Entry<String>,
    #[serde(default, deserialize_with = "present")]
    pub groups: Entry<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionMapRepr {
    #[serde(default, deserialize_with = "present")]
    pub kind: Entry<String>,
    #[serde(default, deserialize_with = "present")]
    pub reduction: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub divisor: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub gamma: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub beta: Entry<i64>,
}

/// `bias: true` or `bias: [false, false, true]`.
pub enum BiasRepr {
    All(bool),
    PerConv(Vec<Spanned<bool>>),
}

impl<'de> Deserialize<'de> for BiasRepr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BiasVisitor;

        impl<'de> Visitor<'de> for BiasVisitor {
            type Value = BiasRepr;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean or a list of booleans, one per convolution of the block")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<BiasRepr, E> {
                Ok(BiasRepr::All(v))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BiasRepr, A::Error> {
                let mut items = Vec::new();
                // A block has two or three convolutions; a few more are read so lowering
                // can report the real count, without letting a huge list allocate.
                while let Some(item) = seq.next_element::<Spanned<bool>>()? {
                    if items.len() < 16 {
                        items.push(item);
                    }
                }
                Ok(BiasRepr::PerConv(items))
            }
        }

        deserializer.deserialize_any(BiasVisitor)
    }
}

/// `input: [3, 224, 224]` or `input: {channels: 3, height: 224, width: 224}`.
pub enum InputRepr {
    List(Vec<Spanned<i64>>),
    Map(InputMapRepr),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputMapRepr {
    #[serde(default, deserialize_with = "present")]
    pub channels: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub height: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub width: Entry<i64>,
}

impl<'de> Deserialize<'de> for InputRepr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InputVisitor;

        impl<'de> Visitor<'de> for InputVisitor {
            type Value = InputRepr;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a list [channels, height, width] or a mapping {channels, height, width}",
                )
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<InputRepr, A::Error> {
                let mut items = Vec::new();
                // The spec needs three numbers; reading a few more lets lowering report the
                // real count without letting a huge list allocate.
                while let Some(item) = seq.next_element::<Spanned<i64>>()? {
                    if items.len() < 16 {
                        items.push(item);
                    }
                }
                Ok(InputRepr::List(items))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<InputRepr, A::Error> {
                InputMapRepr::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(InputRepr::Map)
            }
        }

        deserializer.deserialize_any(InputVisitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StemRepr {
    #[serde(default, deserialize_with = "present")]
    pub conv: Entry<ConvRepr>,
    #[serde(default, deserialize_with = "present")]
    pub convs: Entry<Vec<Spanned<ConvRepr>>>,
    #[serde(default, deserialize_with = "present")]
    pub bn: Entry<bool>,
    #[serde(default, deserialize_with = "present")]
    pub relu: Entry<bool>,
    #[serde(default, deserialize_with = "present")]
    pub pool: Entry<StemPoolRepr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvRepr {
    #[serde(default, deserialize_with = "present")]
    pub filters: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub kernel: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub stride: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub padding: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub bias: Entry<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolRepr {
    #[serde(default, deserialize_with = "present")]
    pub kind: Entry<String>,
    #[serde(default, deserialize_with = "present")]
    pub kernel: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub stride: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub padding: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub ceil_mode: Entry<bool>,
    #[serde(default, deserialize_with = "present")]
    pub anti_alias: Entry<String>,
    #[serde(default, deserialize_with = "present")]
    pub filters: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub bias: Entry<bool>,
}

/// `pool: none` (also `false`) or a pool mapping; any other scalar is kept as written
/// so that the error can point at it (serde would point at the key).
pub enum StemPoolRepr {
    None,
    Pool(Box<PoolRepr>),
    Other(String),
}

impl<'de> Deserialize<'de> for StemPoolRepr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PoolVisitor;

        impl<'de> Visitor<'de> for PoolVisitor {
            type Value = StemPoolRepr;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`none` or a mapping {kind, kernel, stride, padding, ceil_mode}")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<StemPoolRepr, E> {
                Ok(if v == "none" {
                    StemPoolRepr::None
                } else {
                    StemPoolRepr::Other(v.to_owned())
                })
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<StemPoolRepr, E> {
                Ok(if v {
                    StemPoolRepr::Other(v.to_string())
                } else {
                    StemPoolRepr::None
                })
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StemPoolRepr, E> {
                Ok(StemPoolRepr::Other(v.to_string()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StemPoolRepr, E> {
                Ok(StemPoolRepr::Other(v.to_string()))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<StemPoolRepr, E> {
                Ok(StemPoolRepr::Other(v.to_string()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StemPoolRepr, A::Error> {
                PoolRepr::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|p| StemPoolRepr::Pool(Box::new(p)))
            }
        }

        deserializer.deserialize_any(PoolVisitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionsRepr {
    #[serde(default, deserialize_with = "present")]
    pub block: Entry<String>,
    #[serde(default, deserialize_with = "present")]
    pub stride_on: Entry<String>,
    #[serde(default, deserialize_with = "present")]
    pub shortcut: Entry<String>,
    #[serde(default, deserialize_with = "present")]
    pub projection: Entry<ProjectionRepr>,
    #[serde(default, deserialize_with = "present")]
    pub groups: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub width_per_group: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub bias: Entry<BiasRepr>,
    #[serde(default, deserialize_with = "present")]
    pub attention: Entry<KindOr<AttentionMapRepr>>,
    #[serde(default, deserialize_with = "present")]
    pub anti_alias: Entry<String>,
    #[serde(default, deserialize_with = "present")]
    pub stride_at: Entry<String>,
    #[serde(default, deserialize_with = "present")]
    pub dilation: Entry<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectionRepr {
    #[serde(default, deserialize_with = "present")]
    pub bn: Entry<bool>,
    #[serde(default, deserialize_with = "present")]
    pub bias: Entry<bool>,
    #[serde(default, deserialize_with = "present")]
    pub kernel: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub pool: Entry<String>,
}

/// A stage item: its own keys plus any block option (flattening is not used because
/// serde's `flatten` buffers values and would lose their locations).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageRepr {
    #[serde(default, deserialize_with = "present")]
    pub stage: Entry<String>,
    #[serde(default, deserialize_with = "present")]
    pub repeat: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub filters: Entry<Vec<Spanned<i64>>>,
    #[serde(default, deserialize_with = "present")]
    pub stride: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub block: Entry<String>,
    #[serde(default, deserialize_with = "present")]
    pub stride_on: Entry<String>,
    #[serde(default, deserialize_with = "present")]
    pub shortcut: Entry<String>,
    #[serde(default, deserialize_with = "present")]
    pub projection: Entry<ProjectionRepr>,
    #[serde(default, deserialize_with = "present")]
    pub groups: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub width_per_group: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub bias: Entry<BiasRepr>,
    #[serde(default, deserialize_with = "present")]
    pub attention: Entry<KindOr<AttentionMapRepr>>,
    #[serde(default, deserialize_with = "present")]
    pub anti_alias: Entry<String>,
    #[serde(default, deserialize_with = "present")]
    pub stride_at: Entry<String>,
    #[serde(default, deserialize_with = "present")]
    pub dilation: Entry<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadRepr {
    #[serde(default, deserialize_with = "present")]
    pub norm: Entry<bool>,
    #[serde(default, deserialize_with = "present")]
    pub pool: Entry<String>,
    #[serde(default, deserialize_with = "present")]
    pub dropout: Entry<f64>,
    #[serde(default, deserialize_with = "present")]
    pub in_features: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub classes: Entry<i64>,
    #[serde(default, deserialize_with = "present")]
    pub softmax: Entry<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchNormRepr {
    #[serde(default, deserialize_with = "present")]
    pub eps: Entry<f64>,
    #[serde(default, deserialize_with = "present")]
    pub momentum: Entry<f64>,
}
