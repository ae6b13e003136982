//! A restricted reader of the pickles inside PyTorch checkpoints.
//!
//! Python's own `pickle` runs whatever a file names: an opcode `GLOBAL posix system`
//! followed by `REDUCE` calls `os.system`. This reader builds plain data instead and
//! knows exactly what a `state_dict` needs: dicts and `collections.OrderedDict`, lists,
//! tuples, strings, numbers, the tensor rebuild functions of `torch._utils` and the
//! storage classes (`torch.FloatStorage`, ...) that name a storage's dtype in its
//! persistent id. Every other global is refused when it is met, by name, before any
//! argument is looked at; nothing in the file is ever executed, since this reader can
//! call nothing.
//!
//! Why a reader of our own: `serde-pickle` (birkenfeld) is well kept but knows no torch
//! globals and no persistent ids (it can only replace unknown globals by `None`, losing
//! the tensors); `repugnant-pickle` calls itself "low effort scraping" (version 0.0.1);
//! candle's pickle module is a part of `candle-core`, a whole tensor library. The
//! opcodes a `torch.save` file uses are a few dozen, so a focused reader is short, and
//! it refuses everything else.
//!
//! Bounds: the input is in memory (its size is checked by the caller); every length
//! field is compared with the bytes that remain before anything is allocated; containers
//! are shared (`Rc`), so the memo cannot copy a structure into exponential size;
//! integers wider than 64 bits are refused.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::DType;

/// Why a pickle was refused. Messages name no file: the caller's error does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickleError {
    /// The pickle names a Python global outside the whitelist (the usual form of a
    /// malicious payload, and of `torch.save(model)`).
    #[error("it calls for the Python global `{0}`, which a state_dict never needs; refused before anything was run (resnetc reads tensors, dicts, lists and numbers only){hint}", hint = hint(.0))]
    Global(String),
    /// An opcode this reader does not accept.
    #[error("unsupported pickle opcode 0x{opcode:02x}{} at byte {offset}", name_of(*.opcode).map(|n| format!(" ({n})")).unwrap_or_default())]
    Opcode { opcode: u8, offset: usize },
    /// The bytes are not a well-formed pickle.
    #[error("malformed pickle at byte {offset}: {message}")]
    Malformed { offset: usize, message: String },
}

fn hint(global: &str) -> &'static str {
    let module = global.rsplit_once('.').map_or(global, |(m, _)| m);
    let pytorch_code = ["torch.nn", "torchvision", "timm", "__main__"]
        .iter()
        .any(|p| module == *p || module.starts_with(&format!("{p}.")));
    if pytorch_code {
        "; this looks like a whole model saved with `torch.save(model)`, which pickles its classes: save `model.state_dict()` instead"
    } else {
        ""
    }
}

/// A global that the reader accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Global {
    /// `collections.OrderedDict`: called with no arguments (or a list of pairs).
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
    /// backward_hooks[, metadata])`.
    RebuildTensorV2,
    /// `torch._utils._rebuild_tensor(storage, offset, size, stride)` (PyTorch < 1.0).
    RebuildTensor,
    /// `torch._utils._rebuild_parameter(data, requires_grad, backward_hooks)`.
    RebuildParameter,
    /// `torch._utils._rebuild_parameter_with_state(data, requires_grad, hooks, state)`.
    RebuildParameterWithState,
    /// A storage class (`torch.FloatStorage`, `torch.UntypedStorage`): names the dtype
    /// of a storage in its persistent id; never called.
    StorageType(DType),
}

impl Global {
    /// The whitelist: `module.name` to what it means here.
    fn resolve(module: &str, name: &str) -> Option<Global> {
        Some(match (module, name) {
            ("collections", "OrderedDict") => Global::OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
            ("torch._utils", "_rebuild_tensor") => Global::RebuildTensor,
            ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
            ("torch._utils", "_rebuild_parameter_with_state") => Global::RebuildParameterWithState,
            ("torch", storage) | ("torch.storage", storage) => Global::StorageType(match storage {
                "DoubleStorage" => DType::F64,
                "FloatStorage" => DType::F32,
                "HalfStorage" => DType::F16,
                "BFloat16Storage" => DType::BF16,
                "LongStorage" => DType::I64,
                "IntStorage" => DType::I32,
                "ShortStorage" => DType::I16,
                "CharStorage" => DType::I8,
                "ByteStorage" | "UntypedStorage" => DType::U8,
                "BoolStorage" => DType::Bool,
                _ => return None,
            }),
            _ => return None,
        })
    }
}

/// A storage named by a persistent id: `('storage', torch.FloatStorage, key, location,
/// numel)`. Its bytes are the archive entry `data/<key>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Storage {
    pub key: String,
    pub dtype: DType,
    /// Elements the storage declares (checked against its entry's size when read).
    pub numel: u64,
    /// `cpu`, `cuda:0`, ...: where it lived; the bytes are the same.
    pub location: String,
}

/// A tensor as `_rebuild_tensor_v2` describes it: a view of a storage. Nothing is
/// checked here; [`TensorRef::extent`] tells how far into the storage it reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorRef {
    pub storage: Rc<Storage>,
    pub offset: u64,
    pub shape: Vec<u64>,
    pub stride: Vec<u64>,
}

impl TensorRef {
    /// Number of elements, `None` on overflow.
    pub fn numel(&self) -> Option<u64> {
        self.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))
    }

    /// One past the last storage element the view reads (its offset when it is empty),
    /// `None` on overflow.
    pub fn extent(&self) -> Option<u64> {
        if self.shape.contains(&0) {
            return Some(self.offset);
        }
        let mut last = self.offset;
        for (&d, &s) in self.shape.iter().zip(&self.stride) {
            last = last.checked_add((d - 1).checked_mul(s)?)?;
        }
        last.checked_add(1)
    }

    /// Whether the view is the storage's elements in row-major order from `offset`.
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1u64;
        for (&d, &s) in self.shape.iter().zip(&self.stride).rev() {
            if d != 1 && s != expected {
                return false;
            }
            expected = expected.saturating_mul(d);
        }
        true
    }
}

/// A dict in insertion order; string and integer keys are indexed, so that a later
/// `SETITEM` of the same key replaces the value as in Python.
#[derive(Debug, Default)]
pub struct Dict {
    pub entries: Vec<(Value, Value)>,
    index: HashMap<Key, usize>,
}

#[derive(Debug, Hash, PartialEq, Eq)]
enum Key {
    Str(Rc<str>),
    Int(i64),
}

impl Dict {
    fn insert(&mut self, key: Value, value: Value) {
        let k = match &key {
            Value::Str(s) => Some(Key::Str(s.clone())),
            Value::Int(i) => Some(Key::Int(*i)),
            _ => None,
        };
        match k.as_ref().and_then(|k| self.index.get(k)) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                if let Some(k) = k {
                    self.index.insert(k, self.entries.len());
                }
                self.entries.push((key, value));
            }
        }
    }

    /// The value of string key `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.index
            .get(&Key::Str(Rc::from(key)))
            .map(|&i| &self.entries[i].1)
    }
}

/// A value built from a pickle. Containers are shared as Python shares them (the memo
/// hands out the same object), so mutation through one reference shows in the others.
#[derive(Clone, Debug)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Rc<[Value]>),
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Rc<RefCell<Dict>>),
    Global(Global),
    Storage(Rc<Storage>),
    Tensor(Rc<TensorRef>),
}

impl Value {
    /// What the value is, for messages: `a dict`, `a tensor`.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Global(_) => "a class",
            Value::Storage(_) => "a storage",
            Value::Tensor(_) => "a tensor",
        }
    }
}

impl Drop for Value {
    /// Without recursion: a pickle can nest containers millions deep in as many bytes
    /// (`]` then `\x85` over and over), and the default drop would overflow the stack.
    /// The children of containers this value owns alone go onto a heap stack instead.
    fn drop(&mut self) {
        fn take(v: &mut Value, out: &mut Vec<Value>) {
            match v {
                Value::Tuple(t) => {
                    if let Some(items) = Rc::get_mut(t) {
                        out.extend(items.iter_mut().map(|i| std::mem::replace(i, Value::None)));
                    }
                }
                Value::List(l) => {
                    if let Some(items) = Rc::get_mut(l) {
                        out.append(items.get_mut());
                    }
                }
                Value::Dict(d) => {
                    if let Some(d) = Rc::get_mut(d) {
                        for (k, v) in d.get_mut().entries.drain(..) {
                            out.push(k);
                            out.push(v);
                        }
                    }
                }
                _ => {}
            }
        }
        let mut stack = Vec::new();
        take(self, &mut stack);
        while let Some(mut v) = stack.pop() {
            take(&mut v, &mut stack);
        }
    }
}

/// The longest `GLOBAL` line (module or name) read.
const MAX_GLOBAL_LINE: usize = 256;
/// Dimensions of a tensor (PyTorch allows 64).
const MAX_RANK: usize = 64;

/// Reads one pickle (protocol 2 to 5) from `bytes`, to its `STOP`.
pub fn load(bytes: &[u8]) -> Result<Value, PickleError> {
    Unpickler {
        bytes,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    }
    .run()
}

struct Unpickler<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    /// Stack lengths at each `MARK`.
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
}

impl<'a> Unpickler<'a> {
    fn bad(&self, message: impl Into<String>) -> PickleError {
        PickleError::Malformed {
            offset: self.pos,
            message: message.into(),
        }
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], PickleError> {
        let left = (self.bytes.len() - self.pos) as u64;
        if n > left {
            return Err(self.bad(format!("needs {n} bytes, only {left} are left (truncated)")));
        }
        let s = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PickleError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, PickleError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn line(&mut self) -> Result<&'a str, PickleError> {
        let rest = &self.bytes[self.pos..];
        let window = &rest[..rest.len().min(MAX_GLOBAL_LINE + 1)];
        let Some(end) = window.iter().position(|&b| b == b'\n') else {
            return Err(self.bad(format!(
                "a text line of more than {MAX_GLOBAL_LINE} bytes, or no line end"
            )));
        };
        let line =
            std::str::from_utf8(&rest[..end]).map_err(|_| self.bad("a line that is not UTF-8"))?;
        self.pos += end + 1;
        Ok(line)
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(self.bad("pop across a MARK"));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.bad("pop from an empty stack"))
    }

    fn top(&mut self) -> Result<&mut Value, PickleError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(self.bad("no object above the MARK"));
        }
        let pos = self.pos;
        self.stack.last_mut().ok_or(PickleError::Malformed {
            offset: pos,
            message: "empty stack".into(),
        })
    }

    /// Everything above the last MARK, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let m = self.marks.pop().ok_or_else(|| self.bad("no MARK"))?;
        Ok(self.stack.split_off(m))
    }

    fn string(&mut self, n: u64) -> Result<Value, PickleError> {
        let s = self.take(n)?;
        let s = std::str::from_utf8(s).map_err(|_| self.bad("a string that is not UTF-8"))?;
        Ok(Value::Str(Rc::from(s)))
    }

    /// The memo key of a PUT or GET opcode (`MEMOIZE`: the memo's size).
    fn memo_key(&mut self, op: u8) -> Result<u64, PickleError> {
        Ok(match op {
            b'p' | b'g' => {
                let line = self.line()?;
                line.parse()
                    .map_err(|_| self.bad("a memo key that is not a number"))?
            }
            b'q' | b'h' => u64::from(self.u8()?),
            b'r' | b'j' => u64::from(self.u32()?),
            _ => self.memo.len() as u64,
        })
    }

    fn memo_put(&mut self, key: u64) -> Result<(), PickleError> {
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u64) -> Result<(), PickleError> {
        let v = self
            .memo
            .get(&key)
            .cloned()
            .ok_or_else(|| self.bad(format!("memo key {key} was never set")))?;
        self.stack.push(v);
        Ok(())
    }

    fn global(&mut self, module: &str, name: &str) -> Result<(), PickleError> {
        let g = Global::resolve(module, name)
            .ok_or_else(|| PickleError::Global(format!("{module}.{name}")))?;
        self.stack.push(Value::Global(g));
        Ok(())
    }

    fn set_items(&mut self, target: &Value, items: Vec<Value>) -> Result<(), PickleError> {
        let Value::Dict(d) = target else {
            return Err(self.bad(format!("SETITEM on {}", target.kind())));
        };
        if items.len() % 2 != 0 {
            return Err(self.bad("SETITEMS with an odd number of items"));
        }
        let mut d = d.borrow_mut();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.insert(k, v);
        }
        Ok(())
    }

    fn append(&mut self, target: &Value, items: Vec<Value>) -> Result<(), PickleError> {
        let Value::List(l) = target else {
            return Err(self.bad(format!("APPEND on {}", target.kind())));
        };
        l.borrow_mut().extend(items);
        Ok(())
    }

    fn run(mut self) -> Result<Value, PickleError> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    // PROTO
                    let p = self.u8()?;
                    if !(2..=5).contains(&p) {
                        return Err(self.bad(format!("pickle protocol {p}; resnetc reads 2 to 5")));
                    }
                }
                0x95 => {
                    // FRAME: a length hint, the opcodes follow as usual.
                    self.u64()?;
                }
                b'.' => {
                    // STOP
                    let v = self.pop()?;
                    return Ok(v);
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    // POP
                    self.pop()?;
                }
                b'1' => {
                    // POP_MARK
                    self.pop_mark()?;
                }
                b'2' => {
                    // DUP
                    let v = self.top()?.clone();
                    self.stack.push(v);
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = self.u32()? as i32;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                0x8a | 0x8b => {
                    // LONG1, LONG4: little-endian two's complement.
                    let n = if op == 0x8a {
                        u64::from(self.u8()?)
                    } else {
                        u64::from(self.u32()?)
                    };
                    if n > 8 {
                        return Err(self.bad(format!(
                            "an integer of {n} bytes; resnetc reads up to 64 bits"
                        )));
                    }
                    let b = self.take(n)?;
                    let mut buf = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                        [0xffu8; 8]
                    } else {
                        [0u8; 8]
                    };
                    buf[..b.len()].copy_from_slice(b);
                    self.stack.push(Value::Int(i64::from_le_bytes(buf)));
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes(b.try_into().expect("8 bytes"));
                    self.stack.push(Value::Float(v));
                }
                b'X' => {
                    let n = u64::from(self.u32()?);
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                0x8c => {
                    let n = u64::from(self.u8()?);
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                0x8d => {
                    let n = self.u64()?;
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                b'T' | b'U' => {
                    // BINSTRING, SHORT_BINSTRING (Python 2 str): read as text.
                    let n = if op == b'T' {
                        u64::from(self.u32()?)
                    } else {
                        u64::from(self.u8()?)
                    };
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                b'B' | b'C' | 0x8e => {
                    let n = match op {
                        b'B' => u64::from(self.u32()?),
                        b'C' => u64::from(self.u8()?),
                        _ => self.u64()?,
                    };
                    let b = self.take(n)?;
                    self.stack.push(Value::Bytes(Rc::from(b)));
                }
                b'}' => self
                    .stack
                    .push(Value::Dict(Rc::new(RefCell::new(Dict::default())))),
                b']' => self
                    .stack
                    .push(Value::List(Rc::new(RefCell::new(Vec::new())))),
                b')' => self.stack.push(Value::Tuple(Rc::from(Vec::new()))),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(Rc::from(items)));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.stack.push(Value::Tuple(Rc::from(items)));
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(Rc::new(RefCell::new(items))));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let d = Value::Dict(Rc::new(RefCell::new(Dict::default())));
                    self.set_items(&d, items)?;
                    self.stack.push(d);
                }
                b'a' => {
                    let v = self.pop()?;
                    let l = self.top()?.clone();
                    self.append(&l, vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let l = self.top()?.clone();
                    self.append(&l, items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let d = self.top()?.clone();
                    self.set_items(&d, vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let d = self.top()?.clone();
                    self.set_items(&d, items)?;
                }
                // PUT, BINPUT, LONG_BINPUT, MEMOIZE
                b'p' | b'q' | b'r' | 0x94 => {
                    let key = self.memo_key(op)?;
                    self.memo_put(key)?;
                }
                // GET, BINGET, LONG_BINGET
                b'g' | b'h' | b'j' => {
                    let key = self.memo_key(op)?;
                    self.memo_get(key)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(module, name)?;
                }
                0x93 => {
                    // STACK_GLOBAL
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (&module, &name) else {
                        return Err(self.bad("STACK_GLOBAL without two strings"));
                    };
                    let (module, name) = (module.clone(), name.clone());
                    self.global(&module, &name)?;
                }
                b'Q' => {
                    // BINPERSID: a storage.
                    let pid = self.pop()?;
                    let storage = self.persistent_load(&pid)?;
                    self.stack.push(storage);
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.reduce(&callable, &args)?;
                    self.stack.push(v);
                }
                b'b' => {
                    // BUILD: only a dict's attributes (a state_dict's `_metadata`), ignored.
                    let state = self.pop()?;
                    let target = self.top()?;
                    match (&*target, &state) {
                        (Value::Dict(_), Value::Dict(_) | Value::None) => {}
                        (Value::Tensor(_), Value::None) => {}
                        (t, s) => {
                            let message = format!("BUILD of {} with {}", t.kind(), s.kind());
                            return Err(self.bad(message));
                        }
                    }
                }
                _ => {
                    return Err(PickleError::Opcode {
                        opcode: op,
                        offset: at,
                    })
                }
            }
        }
    }

    fn persistent_load(&self, pid: &Value) -> Result<Value, PickleError> {
        let bad = || {
            self.bad("a persistent id that is not ('storage', storage class, key, location, numel)")
        };
        let Value::Tuple(t) = pid else {
            return Err(bad());
        };
        let [Value::Str(tag), Value::Global(Global::StorageType(dtype)), key, Value::Str(location), Value::Int(numel)] =
            &t[..]
        else {
            return Err(bad());
        };
        if &**tag != "storage" || *numel < 0 {
            return Err(bad());
        }
        let key = match key {
            Value::Str(s) => s.to_string(),
            Value::Int(i) => i.to_string(),
            _ => return Err(bad()),
        };
        Ok(Value::Storage(Rc::new(Storage {
            key,
            dtype: *dtype,
            numel: *numel as u64,
            location: location.to_string(),
        })))
    }

    fn reduce(&self, callable: &Value, args: &Value) -> Result<Value, PickleError> {
        let Value::Global(g) = callable else {
            return Err(self.bad(format!("REDUCE calls {}", callable.kind())));
        };
        let Value::Tuple(args) = args else {
            return Err(self.bad("REDUCE arguments that are not a tuple"));
        };
        let bad = |what: &str| self.bad(format!("{what}: unexpected arguments"));
        match g {
            Global::OrderedDict => {
                let d = Value::Dict(Rc::new(RefCell::new(Dict::default())));
                match &args[..] {
                    [] => {}
                    [Value::List(pairs)] => {
                        let Value::Dict(inner) = &d else {
                            unreachable!()
                        };
                        for p in pairs.borrow().iter() {
                            let Value::Tuple(kv) = p else {
                                return Err(bad("OrderedDict"));
                            };
                            let [k, v] = &kv[..] else {
                                return Err(bad("OrderedDict"));
                            };
                            inner.borrow_mut().insert(k.clone(), v.clone());
                        }
                    }
                    _ => return Err(bad("OrderedDict")),
                }
                Ok(d)
            }
            Global::RebuildTensorV2 | Global::RebuildTensor => {
                let (storage, offset, size, stride, rest) = match &args[..] {
                    [s, o, z, t, rest @ ..] => (s, o, z, t, rest),
                    _ => return Err(bad("_rebuild_tensor")),
                };
                if *g == Global::RebuildTensorV2 {
                    // requires_grad, backward_hooks (empty), then optional metadata.
                    match rest {
                        [Value::Bool(_), hooks] | [Value::Bool(_), hooks, _] => {
                            self.no_hooks(hooks)?
                        }
                        _ => return Err(bad("_rebuild_tensor_v2")),
                    }
                } else if !rest.is_empty() {
                    return Err(bad("_rebuild_tensor"));
                }
                let Value::Storage(storage) = storage else {
                    return Err(bad("_rebuild_tensor (no storage)"));
                };
                let Value::Int(offset) = offset else {
                    return Err(bad("_rebuild_tensor (offset)"));
                };
                let shape = self.dims(size, "size")?;
                let stride = self.dims(stride, "stride")?;
                if shape.len() != stride.len() || *offset < 0 {
                    return Err(bad("_rebuild_tensor (size and stride differ in length)"));
                }
                Ok(Value::Tensor(Rc::new(TensorRef {
                    storage: storage.clone(),
                    offset: *offset as u64,
                    shape,
                    stride,
                })))
            }
            Global::RebuildParameter | Global::RebuildParameterWithState => match &args[..] {
                [t @ Value::Tensor(_), Value::Bool(_), hooks]
                | [t @ Value::Tensor(_), Value::Bool(_), hooks, _] => {
                    self.no_hooks(hooks)?;
                    Ok(t.clone())
                }
                _ => Err(bad("_rebuild_parameter")),
            },
            Global::StorageType(_) => Err(self.bad("a storage class called as a function")),
        }
    }

    /// `backward_hooks` must be empty: hooks are functions, and would be refused as
    /// globals anyway.
    fn no_hooks(&self, hooks: &Value) -> Result<(), PickleError> {
        match hooks {
            Value::Dict(d) if d.borrow().entries.is_empty() => Ok(()),
            Value::None => Ok(()),
            _ => Err(self.bad("a tensor with backward hooks")),
        }
    }

    fn dims(&self, v: &Value, what: &str) -> Result<Vec<u64>, PickleError> {
        let Value::Tuple(t) = v else {
            return Err(self.bad(format!("a tensor {what} that is not a tuple")));
        };
        if t.len() > MAX_RANK {
            return Err(self.bad(format!("a tensor of {} dimensions", t.len())));
        }
        t.iter()
            .map(|d| match d {
                Value::Int(i) if *i >= 0 => Ok(*i as u64),
                _ => Err(self.bad(format!(
                    "a tensor {what} with a negative or non-integer entry"
                ))),
            })
            .collect()
    }
}

/// The name of the opcodes this reader refuses, for messages.
fn name_of(op: u8) -> Option<&'static str> {
    Some(match op {
        b'i' => "INST",
        b'o' => "OBJ",
        0x81 => "NEWOBJ",
        0x92 => "NEWOBJ_EX",
        0x82..=0x84 => "EXT",
        b'P' => "PERSID",
        b'I' => "INT",
        b'L' => "LONG",
        b'F' => "FLOAT",
        b'S' => "STRING",
        b'V' => "UNICODE",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `GLOBAL module\nname\n`.
    fn global(module: &str, name: &str) -> Vec<u8> {
        let mut v = vec![b'c'];
        v.extend(module.as_bytes());
        v.push(b'\n');
        v.extend(name.as_bytes());
        v.push(b'\n');
        v
    }

    fn unicode(s: &str) -> Vec<u8> {
        let mut v = vec![b'X'];
        v.extend((s.len() as u32).to_le_bytes());
        v.extend(s.as_bytes());
        v
    }

    /// `OrderedDict(w=_rebuild_tensor_v2(FloatStorage '0' of 6, 0, (2, 3), (3, 1), False,
    /// {}))` with a `_metadata` BUILD, as torch.save pickles a state_dict (a memo PUT
    /// included).
    fn state_dict_pickle() -> Vec<u8> {
        let mut p = vec![0x80, 2];
        p.extend(global("collections", "OrderedDict"));
        p.extend(b")R(");
        p.extend(unicode("w"));
        p.extend(global("torch._utils", "_rebuild_tensor_v2"));
        p.extend(b"((");
        p.extend(unicode("storage"));
        p.extend(global("torch", "FloatStorage"));
        p.extend(unicode("0"));
        p.extend(unicode("cpu"));
        p.extend(b"K\x06tQ"); // numel 6, TUPLE, BINPERSID
        p.extend(b"K\x00"); // offset
        p.extend(b"K\x02K\x03\x86"); // size (2, 3)
        p.extend(b"K\x03K\x01\x86"); // stride (3, 1)
        p.push(0x89); // requires_grad False
        p.extend(b"}tRq\x01"); // hooks {}, TUPLE, REDUCE, BINPUT 1
        p.extend(b"u}b."); // SETITEMS, BUILD with {}, STOP
        p
    }

    #[test]
    fn reads_an_ordered_dict_of_tensors() {
        let p = state_dict_pickle();
        let v = load(&p).unwrap();
        let Value::Dict(d) = &v else {
            panic!("not a dict")
        };
        let d = d.borrow();
        let Some(Value::Tensor(t)) = d.get("w") else {
            panic!("no tensor")
        };
        assert_eq!(t.shape, [2, 3]);
        assert_eq!(t.storage.dtype, DType::F32);
        assert_eq!(t.extent(), Some(6));
        assert!(t.is_contiguous());
    }

    #[test]
    fn refuses_globals_outside_the_whitelist_before_calling_anything() {
        // pickle.dumps of an object whose __reduce__ returns (os.system, ("touch x",)).
        let mut p = vec![0x80, 2];
        p.extend(global("posix", "system"));
        p.extend(unicode("touch x"));
        p.extend(b"\x85R.");
        let e = load(&p).unwrap_err();
        assert_eq!(e, PickleError::Global("posix.system".into()));
        assert!(e.to_string().contains("`posix.system`"), "{e}");
        // Protocol 4's STACK_GLOBAL is refused the same way.
        let mut p = vec![0x80, 4];
        p.extend(b"\x8c\x08builtins\x8c\x04eval\x93");
        assert_eq!(
            load(&p).unwrap_err(),
            PickleError::Global("builtins.eval".into())
        );
        // A whole module (torch.save(model)).
        let mut p = vec![0x80, 2];
        p.extend(global("torchvision.models.resnet", "ResNet"));
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("state_dict()"), "{e}");
    }

    #[test]
    fn refuses_malformed_input_without_panicking() {
        let cases: &[&[u8]] = &[
            b"",
            b"\x80",
            b"\x80\x09",
            b"\x80\x02X\xff\xff\xff\xff",
            b"\x80\x02\x8d\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\x80\x02\x8b\x00\x00\x00\x10",
            b"\x80\x02h\x05.",
            b"\x80\x02u.",
            b"\x80\x02(.",
            b"\x80\x02K\x01K\x02s.",
            b"\x80\x02\x81.",
            b"\x80\x02cos\n",
            b"\x80\x02NR.",
            b"\x80\x02]\x94h\x00a.",
        ];
        for c in cases {
            let r = std::panic::catch_unwind(|| load(c));
            let r = r.unwrap_or_else(|_| panic!("panic on {c:?}"));
            if let Ok(v) = &r {
                // A self-containing list is data, not an error.
                assert!(matches!(v, Value::List(_)), "{c:?} -> {v:?}");
            }
        }
    }

    /// Every truncation and every single-byte change of a valid state_dict pickle is
    /// read or refused, never a panic.
    #[test]
    fn mutated_pickles_never_panic() {
        let p = state_dict_pickle();
        assert!(load(&p).is_ok());
        for cut in 0..p.len() {
            let _ = load(&p[..cut]);
        }
        for i in 0..p.len() {
            for b in [
                0u8, 1, 0x7f, 0x80, 0xff, b'(', b't', b'R', b'h', b'q', b'u', b'.',
            ] {
                let mut m = p.clone();
                m[i] = b;
                let _ = load(&m);
            }
        }
    }

    /// Containers nested two million deep (one byte each) are read and dropped without
    /// overflowing the stack.
    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let mut p = vec![0x80, 2, b']'];
        p.extend(std::iter::repeat_n(0x85, 2_000_000));
        p.push(b'.');
        assert!(matches!(load(&p), Ok(Value::Tuple(_))));
        let mut p = vec![0x80, 2];
        p.extend(std::iter::repeat_n(b']', 1_000_000));
        p.extend(std::iter::repeat_n(b'a', 999_999));
        p.push(b'.');
        assert!(matches!(load(&p), Ok(Value::List(_))));
    }

    #[test]
    fn views_report_their_extent() {
        let storage = Rc::new(Storage {
            key: "0".into(),
            dtype: DType::F32,
            numel: 10,
            location: "cpu".into(),
        });
        let t = TensorRef {
            storage,
            offset: 2,
            shape: vec![2, 2],
            stride: vec![1, 2],
        };
        assert_eq!(t.extent(), Some(6));
        assert!(!t.is_contiguous());
        let huge = TensorRef {
            shape: vec![1_000_000, 1_000_000],
            stride: vec![1_000_000, 1],
            ..t.clone()
        };
        assert_eq!(huge.numel(), Some(1_000_000_000_000));
        assert_eq!(huge.extent(), Some(1_000_000_000_002));
    }
}
