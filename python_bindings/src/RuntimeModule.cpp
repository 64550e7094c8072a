//===- RuntimeModule.cpp - moe_mlir._runtime, over moert ------------------===//
//
// The runtime half of the Python bindings: load an artifact, describe its
// functions, call them on host arrays without copying the arguments. It
// links moert only (no MLIR), like the C++ runtime. The pure-Python package
// (moe_mlir/artifact.py) converts dtypes and wraps the results.
//
//===----------------------------------------------------------------------===//

#include "moe-mlir/Runtime/moert.h"

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <cstdint>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace nb = nanobind;

namespace {

/// A failed moert call; Python sees moe_mlir._runtime.Error with moert's
/// message.
struct MoertError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void throwLastError() { throw MoertError(moert_last_error()); }

using ArtifactPtr = std::shared_ptr<moert_artifact>;

/// A tensor spec as Python sees it: (dtype name, dims with None for dynamic).
using PySpec = std::tuple<std::string, std::vector<std::optional<int64_t>>>;

PySpec toPySpec(moert_dtype dtype, int rank, const int64_t *dims) {
  std::vector<std::optional<int64_t>> shape;
  for (int i = 0; i < rank; ++i)
    shape.push_back(dims[i] == MOERT_DYNAMIC ? std::nullopt
                                             : std::optional<int64_t>(dims[i]));
  return {moert_dtype_name(dtype), shape};
}

moert_dtype parseDType(const std::string &name) {
  moert_dtype dtype;
  if (moert_dtype_parse(name.c_str(), &dtype))
    throwLastError();
  return dtype;
}

/// Host arrays, read only, C-contiguous: NumPy arrays and DLPack tensors.
using HostArray = nb::ndarray<nb::ro, nb::c_contig, nb::device::cpu>;

struct TensorDeleter {
  void operator()(moert_tensor *tensor) const { moert_tensor_free(tensor); }
};
using TensorPtr = std::unique_ptr<moert_tensor, TensorDeleter>;

/// A NumPy array over a result tensor's memory; the array owns the tensor.
/// 16-bit floats come back as their uint16 bit patterns (NumPy has no
/// bfloat16; the Python side views them).
/// The DLPack type of a moert dtype (bf16 as DLPack's bfloat).
nb::dlpack::dtype dlpackType(moert_dtype dtype) {
  switch (dtype) {
  case MOERT_F32:
    return nb::dtype<float>();
  case MOERT_I32:
    return nb::dtype<int32_t>();
  case MOERT_I64:
    return nb::dtype<int64_t>();
  case MOERT_BF16:
    return {static_cast<uint8_t>(nb::dlpack::dtype_code::Bfloat), 16, 1};
  default:
    return {static_cast<uint8_t>(nb::dlpack::dtype_code::Float), 16, 1};
  }
}

nb::object resultArray(TensorPtr tensor) {
  moert_tensor *raw = tensor.release();
  nb::capsule owner(raw, [](void *p) noexcept {
    moert_tensor_free(static_cast<moert_tensor *>(p));
  });
  int rank = moert_tensor_rank(raw);
  std::vector<size_t> shape(moert_tensor_dims(raw),
                            moert_tensor_dims(raw) + rank);
  nb::dlpack::dtype dtype;
  switch (moert_tensor_dtype(raw)) {
  case MOERT_F32:
    dtype = nb::dtype<float>();
    break;
  case MOERT_I32:
    dtype = nb::dtype<int32_t>();
    break;
  case MOERT_I64:
    dtype = nb::dtype<int64_t>();
    break;
  default:
    dtype = nb::dtype<uint16_t>();
    break;
  }
  return nb::ndarray<nb::numpy>(moert_tensor_data(raw), rank, shape.data(),
                                owner, nullptr, dtype)
      .cast();
}

/// Wraps each argument's memory (no copy) after checking that its element
/// size is the dtype's: the Python side has already matched the dtypes.
std::vector<TensorPtr> wrapArguments(const std::vector<HostArray> &arrays,
                                     const std::vector<std::string> &dtypes) {
  if (arrays.size() != dtypes.size())
    throw MoertError("internal error: " + std::to_string(arrays.size()) +
                     " arrays but " + std::to_string(dtypes.size()) +
                     " dtypes");
  std::vector<TensorPtr> tensors;
  for (size_t i = 0; i < arrays.size(); ++i) {
    moert_dtype dtype = parseDType(dtypes[i]);
    const HostArray &array = arrays[i];
    if (array.itemsize() != moert_dtype_size(dtype))
      throw MoertError("argument " + std::to_string(i) + ": elements of " +
                       std::to_string(array.itemsize()) + " bytes for dtype " +
                       dtypes[i]);
    std::vector<int64_t> dims;
    for (size_t d = 0; d < array.ndim(); ++d)
      dims.push_back(static_cast<int64_t>(array.shape(d)));
    // An empty array may have no buffer; moert wants an address.
    static int64_t emptyStorage[1];
    void *data = const_cast<void *>(array.data());
    if (!data)
      data = emptyStorage;
    TensorPtr tensor(moert_tensor_wrap(dtype, static_cast<int>(dims.size()),
                                       dims.data(), data));
    if (!tensor)
      throw MoertError("argument " + std::to_string(i) + ": " +
                       moert_last_error());
    tensors.push_back(std::move(tensor));
  }
  return tensors;
}

/// A tensor in device memory as Python passes it: (address, dtype, dims).
using DeviceSpec = std::tuple<uintptr_t, std::string, std::vector<int64_t>>;

moert_device_tensor deviceTensor(const DeviceSpec &spec) {
  const auto &[address, dtype, dims] = spec;
  if (dims.size() > MOERT_MAX_RANK)
    throw MoertError("a device tensor of rank " + std::to_string(dims.size()) +
                     " (at most " + std::to_string(MOERT_MAX_RANK) + ")");
  moert_device_tensor tensor = {};
  tensor.dtype = parseDType(dtype);
  tensor.rank = static_cast<int>(dims.size());
  for (size_t d = 0; d < dims.size(); ++d)
    tensor.dims[d] = dims[d];
  tensor.data = reinterpret_cast<void *>(address);
  return tensor;
}

class Function {
public:
  Function(ArtifactPtr artifact, const moert_function *function)
      : artifact(std::move(artifact)), function(function) {}

  std::string name() const { return moert_function_name(function); }

  std::vector<PySpec> args() const {
    std::vector<PySpec> specs;
    for (int i = 0; i < moert_function_num_args(function); ++i)
      specs.push_back(spec(i, moert_function_arg_spec));
    return specs;
  }

  std::vector<PySpec> results() const {
    std::vector<PySpec> specs;
    for (int i = 0; i < moert_function_num_results(function); ++i)
      specs.push_back(spec(i, moert_function_result_spec));
    return specs;
  }

  std::optional<std::string> attr(const std::string &key) const {
    const char *value = moert_function_attr(function, key.c_str());
    return value ? std::optional<std::string>(value) : std::nullopt;
  }

  std::vector<nb::object> call(const std::vector<HostArray> &arrays,
                               const std::vector<std::string> &dtypes) const {
    std::vector<TensorPtr> tensors = wrapArguments(arrays, dtypes);
    std::vector<moert_tensor *> args;
    for (TensorPtr &tensor : tensors)
      args.push_back(tensor.get());
    int numResults = moert_function_num_results(function);
    std::vector<moert_tensor *> results(numResults, nullptr);
    int status;
    {
      // The artifact runs without the GIL: other Python threads go on.
      nb::gil_scoped_release release;
      status = moert_function_call(function, args.data(),
                                   static_cast<int>(args.size()),
                                   results.data(), numResults);
    }
    if (status)
      throwLastError();
    std::vector<nb::object> arrays_out;
    for (moert_tensor *result : results)
      arrays_out.push_back(resultArray(TensorPtr(result)));
    return arrays_out;
  }

  /// Runs a CUDA function on device memory the caller owns (PyTorch's
  /// tensors): each tensor is (address, dtype, dims); results are written
  /// into the caller's buffers; the work runs on `stream` (a CUstream
  /// handle, 0 for the legacy default stream).
  void callDevice(const std::vector<DeviceSpec> &args,
                  const std::vector<DeviceSpec> &results,
                  uintptr_t stream) const {
    std::vector<moert_device_tensor> argTensors, resultTensors;
    for (const DeviceSpec &spec : args)
      argTensors.push_back(deviceTensor(spec));
    for (const DeviceSpec &spec : results)
      resultTensors.push_back(deviceTensor(spec));
    int status;
    {
      nb::gil_scoped_release release;
      status = moert_function_call_device(
          function, argTensors.data(), static_cast<int>(argTensors.size()),
          resultTensors.data(), static_cast<int>(resultTensors.size()),
          reinterpret_cast<void *>(stream));
    }
    if (status)
      throwLastError();
  }

  /// Runs a CUDA function on device memory the caller owns and hands its
  /// results over without a copy: DLPack capsules on the CUDA device over
  /// the function's own buffers, which go back to moert when the last
  /// view of them is gone (torch.from_dlpack(result) keeps it alive).
  std::vector<nb::object> callDeviceOwned(const std::vector<DeviceSpec> &args,
                                          uintptr_t stream) const {
    std::vector<moert_device_tensor> argTensors;
    for (const DeviceSpec &spec : args)
      argTensors.push_back(deviceTensor(spec));
    int numResults = moert_function_num_results(function);
    std::vector<moert_device_result> results(numResults);
    int status;
    {
      nb::gil_scoped_release release;
      status = moert_function_call_device_owned(
          function, argTensors.data(), static_cast<int>(argTensors.size()),
          results.data(), numResults, reinterpret_cast<void *>(stream));
    }
    if (status)
      throwLastError();
    // moert runs on device 0 (moe_mlir.torch takes cuda:0 only).
    const int device = 0;
    std::vector<nb::object> out;
    for (const moert_device_result &result : results) {
      nb::capsule owner(result.owner, [](void *p) noexcept {
        moert_device_result_release(p);
      });
      const moert_device_tensor &t = result.tensor;
      std::vector<size_t> shape(t.dims, t.dims + t.rank);
      out.push_back(nb::ndarray<>(t.data, t.rank, shape.data(), owner,
                                  nullptr, dlpackType(t.dtype),
                                  nb::device::cuda::value, device)
                        .cast());
    }
    return out;
  }

  std::vector<double> time(const std::vector<HostArray> &arrays,
                           const std::vector<std::string> &dtypes, int warmup,
                           int repeat) const {
    std::vector<TensorPtr> tensors = wrapArguments(arrays, dtypes);
    std::vector<moert_tensor *> args;
    for (TensorPtr &tensor : tensors)
      args.push_back(tensor.get());
    std::vector<double> times(repeat > 0 ? repeat : 0);
    int status;
    {
      nb::gil_scoped_release release;
      status = moert_function_time(function, args.data(),
                                   static_cast<int>(args.size()), warmup,
                                   repeat, times.data());
    }
    if (status)
      throwLastError();
    return times;
  }

private:
  using SpecFn = int (*)(const moert_function *, int, moert_dtype *, int *,
                         int64_t *);
  PySpec spec(int index, SpecFn get) const {
    moert_dtype dtype;
    int rank;
    int64_t dims[MOERT_MAX_RANK];
    if (get(function, index, &dtype, &rank, dims))
      throwLastError();
    return toPySpec(dtype, rank, dims);
  }

  ArtifactPtr artifact; ///< Keeps the code of `function` loaded.
  const moert_function *function;
};

class Artifact {
public:
  explicit Artifact(const std::string &path) {
    moert_artifact *raw = nullptr;
    if (moert_artifact_load(path.c_str(), &raw))
      throwLastError();
    artifact = ArtifactPtr(raw, moert_artifact_unload);
  }

  std::string target() const { return moert_artifact_target(artifact.get()); }

  std::string backend() const {
    return moert_artifact_backend(artifact.get()) == MOERT_BACKEND_CUDA
               ? "cuda"
               : "cpu";
  }

  std::vector<Function> functions() const {
    std::vector<Function> all;
    for (int i = 0; i < moert_artifact_num_functions(artifact.get()); ++i)
      all.emplace_back(artifact, moert_artifact_function(artifact.get(), i));
    return all;
  }

  Function function(const std::string &name) const {
    const moert_function *found =
        moert_artifact_lookup(artifact.get(), name.c_str());
    if (!found)
      throwLastError();
    return Function(artifact, found);
  }

private:
  ArtifactPtr artifact;
};

} // namespace

NB_MODULE(_runtime, m) {
  m.doc() = "moert, the MoE-MLIR runtime: load artifacts and call their "
            "functions (no MLIR inside)";
  nb::exception<MoertError>(m, "Error", PyExc_RuntimeError);
  // Caches (moe_mlir.torch's compiled functions) still hold objects when
  // the interpreter exits; that is not a leak worth a report.
  nb::set_leak_warnings(false);

  nb::class_<Function>(m, "Function")
      .def_prop_ro("name", &Function::name)
      .def_prop_ro("args", &Function::args,
                   "[(dtype, dims)] with None for a dynamic dimension")
      .def_prop_ro("results", &Function::results)
      .def("attr", &Function::attr, nb::arg("key"),
           "The metadata attribute KEY, or None")
      .def("call", &Function::call, nb::arg("arrays"), nb::arg("dtypes"),
           "Runs the function on C-contiguous host arrays (not copied) whose "
           "elements are the given moert dtypes; 16-bit floats as uint16 bits")
      .def("call_device", &Function::callDevice, nb::arg("args"),
           nb::arg("results"), nb::arg("stream"),
           "Runs a CUDA function on device buffers: each (address, dtype, "
           "dims); results written into the given buffers, on `stream`")
      .def("call_device_owned", &Function::callDeviceOwned, nb::arg("args"),
           nb::arg("stream"),
           "Runs a CUDA function on device buffers, each (address, dtype, "
           "dims), on `stream`; returns its own result buffers as DLPack "
           "capsules on the GPU, without a copy")
      .def("time", &Function::time, nb::arg("arrays"), nb::arg("dtypes"),
           nb::arg("warmup"), nb::arg("repeat"),
           "Milliseconds of each of `repeat` runs after `warmup` runs");

  nb::class_<Artifact>(m, "Artifact")
      .def(nb::init<const std::string &>(), nb::arg("path"))
      .def_prop_ro("target", &Artifact::target)
      .def_prop_ro("backend", &Artifact::backend)
      .def_prop_ro("functions", &Artifact::functions)
      .def("function", &Artifact::function, nb::arg("name"));

  m.def(
      "set_poison_allocations",
      [](bool enabled) { moert_set_poison_allocations(enabled ? 1 : 0); },
      nb::arg("enabled"),
      "While on, every buffer an artifact allocates starts as 0xFF bytes "
      "(NaN, -1)");
}
