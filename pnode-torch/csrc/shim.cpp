// The C++ half of pnode-torch: the pieces of libtorch's C++ API that tch does not expose.
//
// * A custom autograd node (PnodeOdeBackward) whose backward calls back into Rust, so an ODE
//   block's outputs join the caller's autograd graph and `loss.backward()` runs pnode's
//   discrete adjoint for it. The node owns the Rust state of one forward call and drops it
//   (through the Rust `drop` callback) when the graph is freed, whether or not backward ran.
// * A VJP with an explicit cotangent (torch::autograd::grad with grad_outputs and
//   allow_unused), which tch's run_backward lacks.
// * y + alpha * x in one op (at::add with alpha), for Runge–Kutta combinations.
// * Forward-mode AD (dual levels, make/unpack dual) for JVPs in one forward pass.
//
// Every function catches C++ exceptions and returns them as a malloc'd message (NULL on
// success), freed with pnode_free_message; tensors cross the boundary as heap-allocated
// at::Tensor handles, the representation tch's C_tensor uses.

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/forward_grad.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

char* message(const char* what) {
  char* copy = static_cast<char*>(std::malloc(std::strlen(what) + 1));
  if (copy != nullptr) std::strcpy(copy, what);
  return copy;
}

}  // namespace

extern "C" {

// Rust callbacks of one ODE-block call. `backward` receives one gradient per block output
// (NULL where autograd has none: that output does not reach the loss) and writes one new
// tensor handle (or NULL for "no gradient") per block input; it returns NULL or an error
// message allocated with malloc.
typedef char* (*pnode_backward_fn)(void* state, at::Tensor** grads, int n_grads, at::Tensor** out,
                                   int n_out);
typedef void (*pnode_drop_fn)(void* state);

void pnode_free_message(char* msg) { std::free(msg); }

// A malloc'd copy of the `len` bytes at `msg`, NUL-terminated (for Rust error messages that
// C++ frees).
char* pnode_alloc_message(const char* msg, size_t len) {
  char* copy = static_cast<char*>(std::malloc(len + 1));
  if (copy != nullptr) {
    std::memcpy(copy, msg, len);
    copy[len] = 0;
  }
  return copy;
}

// Whether autograd records operations on this thread now.
int pnode_grad_enabled() { return at::GradMode::is_enabled() ? 1 : 0; }

}  // extern "C"

namespace {

struct PnodeOdeBackward final : public torch::autograd::Node {
  PnodeOdeBackward(void* state, pnode_backward_fn backward, pnode_drop_fn drop, int n_inputs)
      : state_(state), backward_(backward), drop_(drop), n_inputs_(n_inputs) {}

  ~PnodeOdeBackward() override {
    if (drop_ != nullptr) drop_(state_);
  }

  std::string name() const override { return "PnodeOdeBackward"; }

  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    std::vector<at::Tensor*> in(grads.size(), nullptr);
    for (size_t i = 0; i < grads.size(); ++i) {
      if (grads[i].defined()) in[i] = new at::Tensor(grads[i]);
    }
    std::vector<at::Tensor*> out(n_inputs_, nullptr);
    char* err = backward_(state_, in.data(), static_cast<int>(in.size()), out.data(), n_inputs_);
    torch::autograd::variable_list result(n_inputs_);
    for (int i = 0; i < n_inputs_; ++i) {
      if (out[i] != nullptr) {
        result[i] = std::move(*out[i]);
        delete out[i];
      }
    }
    if (err != nullptr) {
      std::string msg(err);
      std::free(err);
      throw std::runtime_error(msg);
    }
    return result;
  }

 private:
  void* state_;
  pnode_backward_fn backward_;
  pnode_drop_fn drop_;
  int n_inputs_;
};

}  // namespace

extern "C" {

// Makes `outputs` (computed without gradient tracking) outputs of a PnodeOdeBackward node whose
// inputs are `inputs`. Takes ownership of `state` in every case: on error it is dropped too.
char* pnode_attach_backward(at::Tensor** inputs, int n_inputs, at::Tensor** outputs, int n_outputs,
                            void* state, pnode_backward_fn backward, pnode_drop_fn drop) {
  c10::intrusive_ptr<torch::autograd::Node> node;
  try {
    node = c10::make_intrusive<PnodeOdeBackward>(state, backward, drop, n_inputs);
  } catch (const std::exception& e) {
    drop(state);
    return message(e.what());
  }
  try {
    std::vector<at::Tensor> ins;
    ins.reserve(n_inputs);
    for (int i = 0; i < n_inputs; ++i) ins.push_back(*inputs[i]);
    node->set_next_edges(torch::autograd::collect_next_edges(ins));
    for (int i = 0; i < n_outputs; ++i) torch::autograd::set_history(*outputs[i], node);
    return nullptr;
  } catch (const std::exception& e) {
    return message(e.what());
  }
}

// grads[i] = (∂out/∂inputs[i])ᵀ cot, zeros where out does not depend on inputs[i]. Frees the
// graph behind `out`.
// With create_graph != 0 the results carry a graph of their own (for a second derivative).
char* pnode_vjp(at::Tensor* out, at::Tensor* cot, at::Tensor** inputs, int n_inputs,
                at::Tensor** grads, int create_graph) {
  try {
    std::vector<at::Tensor> ins;
    ins.reserve(n_inputs);
    for (int i = 0; i < n_inputs; ++i) ins.push_back(*inputs[i]);
    torch::autograd::variable_list g;
    if (out->requires_grad()) {
      g = torch::autograd::grad({*out}, ins, {*cot}, /*retain_graph=*/create_graph != 0,
                                /*create_graph=*/create_graph != 0, /*allow_unused=*/true);
    } else {
      g.resize(n_inputs);
    }
    for (int i = 0; i < n_inputs; ++i) {
      grads[i] = new at::Tensor(g[i].defined() ? g[i] : at::zeros_like(ins[i]));
    }
    return nullptr;
  } catch (const std::exception& e) {
    return message(e.what());
  }
}

// *result = y + alpha * x (a new tensor).
char* pnode_add_scaled(at::Tensor* y, at::Tensor* x, double alpha, at::Tensor** result) {
  try {
    *result = new at::Tensor(at::add(*y, *x, alpha));
    return nullptr;
  } catch (const std::exception& e) {
    return message(e.what());
  }
}

// Enters a new forward-AD level; *level receives its index.
char* pnode_enter_dual_level(int64_t* level) {
  try {
    *level = static_cast<int64_t>(torch::autograd::ForwardADLevel::get_next_idx());
    return nullptr;
  } catch (const std::exception& e) {
    return message(e.what());
  }
}

// Leaves forward-AD level `level` (its tangents are dropped).
char* pnode_exit_dual_level(int64_t level) {
  try {
    torch::autograd::ForwardADLevel::release_idx(static_cast<uint64_t>(level));
    return nullptr;
  } catch (const std::exception& e) {
    return message(e.what());
  }
}

// *result = a dual tensor with primal `primal` and tangent `tangent` at `level`.
char* pnode_make_dual(at::Tensor* primal, at::Tensor* tangent, int64_t level, at::Tensor** result) {
  try {
    *result = new at::Tensor(at::_make_dual(*primal, *tangent, level));
    return nullptr;
  } catch (const std::exception& e) {
    return message(e.what());
  }
}

// *tangent = the tangent of `dual` at `level` (an undefined tangent becomes zeros).
char* pnode_tangent(at::Tensor* dual, int64_t level, at::Tensor** tangent) {
  try {
    auto parts = at::_unpack_dual(*dual, level);
    const at::Tensor& t = std::get<1>(parts);
    *tangent = new at::Tensor(t.defined() ? t.clone() : at::zeros_like(*dual));
    return nullptr;
  } catch (const std::exception& e) {
    return message(e.what());
  }
}

// y += alpha * x, in place.
char* pnode_add_scaled_(at::Tensor* y, at::Tensor* x, double alpha) {
  try {
    y->add_(*x, alpha);
    return nullptr;
  } catch (const std::exception& e) {
    return message(e.what());
  }
}

}  // extern "C"
