//! A libtorch module as an [`OpaqueLayer`]: [`TorchLayer`] lets generated `#[neural_ode]` code
//! call any tch closure (a `nn::Sequential`, a hand-written network, …) as a layer
//! `y = g(x; φ)` over flat `f64` slices.
//!
//! The layer's parameters `φ` are the **trainable** variables of a `VarStore` (those requiring
//! grad), sorted by variable name, each flattened row-major and concatenated:
//!
//! ```text
//! φ = [vec(v₁), vec(v₂), …, vec(v_K)]      names(v₁) < names(v₂) < … (byte order)
//! ```
//!
//! Every call receives `φ` from the model's flat `θ` and copies it into the variables (under
//! `no_grad`) unless the variables already hold exactly these values: the last-loaded `φ` is
//! kept, compared bitwise, and libtorch's version counters of the variables tell whether
//! anything else (another layer on the same variables, an optimizer, `VarStore::load`) wrote
//! them since, so repeated calls within one solve cost no copy and nothing stale is used.
//!
//! Derivatives, each at exactly the `x`, direction and cotangent given:
//!
//! * JVP `dy = (∂g/∂x) dx` by forward-mode AD: one forward pass of the closure on the dual
//!   tensor `x + ε dx` (`φ` held fixed), whose tangent is `dy` (through the shim's dual
//!   levels, serialised process-wide because libtorch's forward-AD levels are global);
//! * VJP `x̄ = (∂g/∂x)ᵀ ȳ`, `φ̄ += (∂g/∂φ)ᵀ ȳ` by reverse mode: one forward pass on a fresh
//!   leaf `x` recording the graph and one `autograd::grad` of `y` with output gradient `ȳ`
//!   with respect to `x` and the trainable variables (zero for a variable `y` does not depend
//!   on); the graph is freed by that backward pass.
//!
//! Failures — a panic in the closure (tch panics on shape errors), a libtorch error, an output
//! of the wrong size or dtype — come back as `Err` with the cause; nothing panics out of the
//! layer.

use std::panic::{AssertUnwindSafe, catch_unwind};

use pnode_runtime::ModelError;
use pnode_runtime::opaque::OpaqueLayer;
use tch::{Device, Kind, TchError, Tensor, nn};

use crate::error::{Error, Result, panic_message};
use crate::ffi;

/// The closure of a [`TorchLayer`].
type LayerFn = Box<dyn FnMut(&Tensor) -> Tensor + Send>;

/// A tch closure `x ↦ y = g(x; φ)` as an [`OpaqueLayer`] over flat `f64` slices, with the
/// trainable variables of a `VarStore` as its parameters `φ` (see the [module](self) docs
/// for the layout and the derivatives).
///
/// The closure receives `x` as an `f64` tensor of the layer's input shape on the variables'
/// device and returns a tensor of `output_len` elements (any shape; flattened row-major).
///
/// ```
/// use pnode_torch::TorchLayer;
/// use pnode_torch::tch::{Device, Kind, nn, nn::Module};
/// let mut vs = nn::VarStore::new(Device::Cpu);
/// vs.set_kind(Kind::Double);
/// let root = vs.root();
/// let net = nn::seq()
///     .add(nn::linear(&root / "l1", 2, 16, Default::default()))
///     .add_fn(|x| x.tanh())
///     .add(nn::linear(&root / "l2", 16, 2, Default::default()));
/// let layer = TorchLayer::from_module(&vs, &[1, 2], 2, net).unwrap();
/// assert_eq!(layer.parameter_names(), ["l1.bias", "l1.weight", "l2.bias", "l2.weight"]);
///
/// // As generated code uses it: φ is a segment of the model's θ, passed on every call.
/// use pnode_torch::pnode_runtime::opaque::OpaqueLayer;
/// let mut layer: Box<dyn OpaqueLayer> = Box::new(layer);
/// let mut phi = vec![0.0; layer.param_len()]; // 16 + 32 + 2 + 32
/// layer.params(&mut phi);
/// let (mut y, mut xbar, mut phibar) = ([0.0; 2], [0.0; 2], vec![0.0; 82]);
/// layer.forward(&[0.5, -1.0], &phi, &mut y).unwrap();
/// layer.vjp(&[0.5, -1.0], &phi, &[1.0, 0.0], &mut xbar, &mut phibar).unwrap();
/// assert_eq!(phibar[48..50], [1.0, 0.0]); // ∂y₀/∂(l2.bias)
/// ```
pub struct TorchLayer {
    f: LayerFn,
    names: Vec<String>,
    vars: Vec<Tensor>,
    device: Device,
    input_shape: Vec<i64>,
    input_len: usize,
    output_len: usize,
    param_len: usize,
    /// What the variables were last loaded with (`None` until the first load).
    loaded: Option<Vec<f64>>,
    /// The variables' version counters right after that load.
    versions: Vec<i64>,
}

impl std::fmt::Debug for TorchLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorchLayer")
            .field("input_shape", &self.input_shape)
            .field("output_len", &self.output_len)
            .field("parameters", &self.names)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// A tch error as a layer failure (libtorch's message, without its C++ stack trace).
fn torch(e: TchError) -> ModelError {
    Error::from(e).into()
}

impl TorchLayer {
    /// `f` as a layer from `input_shape` (`x` has their product of elements, reshaped
    /// row-major) to `output_len` elements, with the trainable variables of `vs` as `φ`.
    ///
    /// Errors when a dimension of `input_shape` is negative, when a trainable variable is not
    /// `f64` (`Kind::Double`; call `vs.double()` or `vs.set_kind(Kind::Double)` first) or when
    /// the trainable variables are on different devices; the error names the variable.
    pub fn new(
        vs: &nn::VarStore,
        input_shape: &[i64],
        output_len: usize,
        f: impl FnMut(&Tensor) -> Tensor + Send + 'static,
    ) -> Result<Self> {
        if let Some(d) = input_shape.iter().find(|&&d| d < 0) {
            return Err(Error::Usage(format!(
                "TorchLayer input shape {input_shape:?} has a negative dimension {d}"
            )));
        }
        let mut named: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let device = named.first().map_or(vs.device(), |(_, t)| t.device());
        for (name, t) in &named {
            let kind = t.f_kind()?;
            if kind != Kind::Double {
                return Err(Error::Mismatch {
                    what: format!(
                        "dtype of variable `{name}` (a TorchLayer's parameters are f64: call \
                         VarStore::double first)"
                    ),
                    expected: "Double".into(),
                    found: format!("{kind:?}"),
                });
            }
            if t.device() != device {
                return Err(Error::Mismatch {
                    what: format!("device of variable `{name}`"),
                    expected: format!("{device:?} (that of `{}`)", named[0].0),
                    found: format!("{:?}", t.device()),
                });
            }
        }
        let (names, vars): (Vec<String>, Vec<Tensor>) = named.into_iter().unzip();
        let param_len = vars.iter().map(Tensor::numel).sum();
        Ok(Self {
            f: Box::new(f),
            names,
            vars,
            device,
            input_shape: input_shape.to_vec(),
            input_len: input_shape.iter().product::<i64>() as usize,
            output_len,
            param_len,
            loaded: None,
            versions: Vec::new(),
        })
    }

    /// [`TorchLayer::new`] with `module.forward` as the closure.
    pub fn from_module(
        vs: &nn::VarStore,
        input_shape: &[i64],
        output_len: usize,
        module: impl nn::Module + 'static,
    ) -> Result<Self> {
        Self::new(vs, input_shape, output_len, move |x| module.forward(x))
    }

    /// The names of the variables making up `φ`, in `φ`'s order (sorted).
    pub fn parameter_names(&self) -> &[String] {
        &self.names
    }

    /// The shape the closure receives `x` in.
    pub fn input_shape(&self) -> &[i64] {
        &self.input_shape
    }

    /// The device of the variables, where `x` is created.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Copies `phi` into the variables unless they hold exactly it already (bitwise equal to
    /// the last load, and no variable written since).
    fn load(&mut self, phi: &[f64]) -> std::result::Result<(), ModelError> {
        if phi.len() != self.param_len {
            return Err(ModelError::Mismatch {
                what: "length of φ".into(),
                expected: format!("{} entries (the trainable variables')", self.param_len),
                found: format!("{} entries", phi.len()),
            });
        }
        let same_values = self
            .loaded
            .as_deref()
            .is_some_and(|old| old.iter().zip(phi).all(|(a, b)| a.to_bits() == b.to_bits()));
        if same_values {
            let mut untouched = true;
            for (v, &version) in self.vars.iter().zip(&self.versions) {
                untouched &= v.f_internal_version().map_err(torch)? == version;
            }
            if untouched {
                return Ok(());
            }
        }
        // Invalid until the copy below has completed.
        self.loaded = None;
        let src = Tensor::f_from_slice(phi)
            .and_then(|t| t.f_to_device(self.device))
            .map_err(torch)?;
        let mut versions = Vec::with_capacity(self.vars.len());
        tch::no_grad(|| -> std::result::Result<(), TchError> {
            let mut offset = 0i64;
            for v in &mut self.vars {
                let n = v.numel() as i64;
                let values = src.f_narrow(0, offset, n)?.f_view(v.size().as_slice())?;
                v.f_copy_(&values)?;
                versions.push(v.f_internal_version()?);
                offset += n;
            }
            Ok(())
        })
        .map_err(torch)?;
        self.versions = versions;
        self.loaded = Some(phi.to_vec());
        Ok(())
    }

    /// `v` as an `f64` tensor of `shape` on the variables' device.
    fn tensor(&self, v: &[f64], shape: &[i64]) -> std::result::Result<Tensor, ModelError> {
        Tensor::f_from_slice(v)
            .and_then(|t| t.f_to_device(self.device))
            .and_then(|t| t.f_reshape(shape))
            .map_err(torch)
    }

    /// Runs `body`, turning a panic into an error.
    fn guarded(
        &mut self,
        body: impl FnOnce(&mut Self) -> std::result::Result<(), ModelError>,
    ) -> std::result::Result<(), ModelError> {
        catch_unwind(AssertUnwindSafe(|| body(&mut *self))).unwrap_or_else(|payload| {
            Err(ModelError::Panic {
                message: panic_message(payload.as_ref()),
            })
        })
    }
}

/// `y = f(x)`, checked to be `output_len` f64 elements; a panic in `f` becomes an error.
fn call(f: &mut LayerFn, x: &Tensor, output_len: usize) -> std::result::Result<Tensor, ModelError> {
    let y = catch_unwind(AssertUnwindSafe(|| f(x))).map_err(|payload| ModelError::Panic {
        message: panic_message(payload.as_ref()),
    })?;
    let returned = |expected: String, found: String| ModelError::Mismatch {
        what: "the tensor the layer's function returned".into(),
        expected,
        found,
    };
    if !y.defined() {
        return Err(returned("a tensor".into(), "an undefined tensor".into()));
    }
    if y.numel() != output_len {
        return Err(returned(
            format!("{output_len} elements (the layer's outputs)"),
            format!("{} elements (shape {:?})", y.numel(), y.size()),
        ));
    }
    let kind = y.f_kind().map_err(torch)?;
    if kind != Kind::Double {
        return Err(returned(
            "f64 (an opaque layer's output)".into(),
            format!("{kind:?}"),
        ));
    }
    Ok(y)
}

/// Copies an f64 tensor's values (any shape, any device) row-major into `out`.
fn copy_out(t: &Tensor, out: &mut [f64]) -> std::result::Result<(), ModelError> {
    if t.numel() != out.len() {
        return Err(ModelError::Mismatch {
            what: "a result's length".into(),
            expected: out.len().to_string(),
            found: t.numel().to_string(),
        });
    }
    t.f_copy_data(out, out.len()).map_err(torch)
}

impl OpaqueLayer for TorchLayer {
    fn input_len(&self) -> usize {
        self.input_len
    }

    fn output_len(&self) -> usize {
        self.output_len
    }

    fn param_len(&self) -> usize {
        self.param_len
    }

    /// The variables' current values in `φ`'s order (their initialisation until a call loads
    /// another `φ`). NaN if libtorch cannot read them (it always can for f64 variables).
    fn params(&self, phi: &mut [f64]) {
        let mut offset = 0;
        for v in &self.vars {
            let n = v.numel();
            let Some(segment) = phi.get_mut(offset..offset + n) else {
                break;
            };
            if copy_out(&v.detach(), segment).is_err() {
                segment.fill(f64::NAN);
            }
            offset += n;
        }
    }

    fn forward(
        &mut self,
        x: &[f64],
        phi: &[f64],
        y: &mut [f64],
    ) -> std::result::Result<(), ModelError> {
        self.guarded(|layer| {
            layer.load(phi)?;
            let x = layer.tensor(x, &layer.input_shape)?;
            let out = tch::no_grad(|| call(&mut layer.f, &x, layer.output_len))?;
            copy_out(&out, y)
        })
    }

    fn jvp(
        &mut self,
        x: &[f64],
        phi: &[f64],
        dx: &[f64],
        dy: &mut [f64],
    ) -> std::result::Result<(), ModelError> {
        self.guarded(|layer| {
            layer.load(phi)?;
            let x = layer.tensor(x, &layer.input_shape)?;
            let dx = layer.tensor(dx, &layer.input_shape)?;
            let (f, m) = (&mut layer.f, layer.output_len);
            let (_, tangent) = tch::no_grad(|| ffi::jvp_forward(&x, &dx, |dual| call(f, dual, m)))
                .map_err(ModelError::from)??;
            copy_out(&tangent, dy)
        })
    }

    fn vjp(
        &mut self,
        x: &[f64],
        phi: &[f64],
        ybar: &[f64],
        xbar: &mut [f64],
        phibar: &mut [f64],
    ) -> std::result::Result<(), ModelError> {
        self.guarded(|layer| {
            layer.load(phi)?;
            let leaf = layer
                .tensor(x, &layer.input_shape)?
                .f_detach()
                .and_then(|t| t.f_set_requires_grad(true))
                .map_err(torch)?;
            let y = tch::with_grad(|| call(&mut layer.f, &leaf, layer.output_len))?;
            let cot = layer.tensor(ybar, &y.size())?;
            let mut inputs: Vec<&Tensor> = Vec::with_capacity(1 + layer.vars.len());
            inputs.push(&leaf);
            inputs.extend(layer.vars.iter());
            let grads = ffi::vjp(&y, &cot, &inputs).map_err(ModelError::from)?;
            // Everything is read out before `xbar` and `φ̄` change, so a failure leaves `φ̄`
            // as it was.
            let mut gphi = vec![0.0; layer.param_len];
            let mut offset = 0;
            for g in &grads[1..] {
                let n = g.numel();
                copy_out(g, &mut gphi[offset..offset + n])?;
                offset += n;
            }
            copy_out(&grads[0], xbar)?;
            for (acc, g) in phibar.iter_mut().zip(&gphi) {
                *acc += g;
            }
            Ok(())
        })
    }
}
