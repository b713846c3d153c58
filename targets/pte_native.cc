// A C interface over ExecuTorch's C++ Module, for ctypes: the torch-free way to run a .pte from Python.
#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace executorch::extension::threadpool {
class ThreadPool {
 public:
  bool _unsafe_reset_threadpool(uint32_t num_threads);
  size_t get_thread_count() const;
};
ThreadPool* get_threadpool();
}  // namespace executorch::extension::threadpool

namespace ext = executorch::extension;
using executorch::extension::Module;
using executorch::runtime::EValue;

extern "C" {

int bcx_set_threads(int n) {
  auto* pool = ext::threadpool::get_threadpool();
  if (pool == nullptr) return -1;
  if (n > 0 && pool->get_thread_count() != static_cast<size_t>(n)) pool->_unsafe_reset_threadpool(n);
  return static_cast<int>(pool->get_thread_count());
}

void* bcx_load(const char* path, char* err, int err_len) {
  auto* m = new Module(path, Module::LoadMode::Mmap);
  auto e = m->load();
  if (e != executorch::runtime::Error::Ok) {
    std::snprintf(err, err_len, "ExecuTorch cannot load %s (error 0x%x)", path, static_cast<int>(e));
    delete m;
    return nullptr;
  }
  return m;
}

int bcx_method_names(void* h, char* out, int len) {
  auto names = static_cast<Module*>(h)->method_names();
  if (!names.ok()) return -1;
  std::string s;
  for (const auto& n : *names) s += n + "\n";
  std::snprintf(out, len, "%s", s.c_str());
  return static_cast<int>(s.size());
}

int bcx_num_inputs(void* h, const char* method) {
  auto meta = static_cast<Module*>(h)->method_meta(method);
  return meta.ok() ? static_cast<int>(meta->num_inputs()) : -1;
}

// n_inputs int64 arrays of shape [1, seq] in; the first output (float32) copied into out, its shape into shape.
// Returns the number of elements, or a negative ExecuTorch error code (-1: out too small).
long bcx_run(void* h, const char* method, const int64_t** inputs, int n_inputs, int seq, float* out, long out_cap,
             long* shape, int* ndim) {
  std::vector<ext::TensorPtr> keep;
  std::vector<EValue> args;
  for (int i = 0; i < n_inputs; ++i) {
    keep.push_back(ext::from_blob(const_cast<int64_t*>(inputs[i]), {1, seq}, executorch::aten::ScalarType::Long));
    args.emplace_back(*keep.back());
  }
  auto result = static_cast<Module*>(h)->execute(method, args);
  if (!result.ok()) return -static_cast<long>(result.error()) - 2;
  const auto& t = (*result)[0].toTensor();
  long n = t.numel();
  if (n > out_cap) return -1;
  std::memcpy(out, t.const_data_ptr<float>(), n * sizeof(float));
  *ndim = static_cast<int>(t.dim());
  for (int d = 0; d < t.dim() && d < 4; ++d) shape[d] = t.size(d);
  return n;
}

void bcx_free(void* h) { delete static_cast<Module*>(h); }

}  // extern "C"
