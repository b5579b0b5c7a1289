#include "run_node_pool.hpp"

#include <cstdlib>

namespace mqc {

RunNodePool::~RunNodePool() {
  for (RunNode* s : slabs_) std::free(s);
}

RunNode* RunNodePool::acquire(int height) {
  if (free_ == nullptr) {
    // RunNode is trivially constructible; malloc keeps this allocation out of operator new, which
    // cannot report failure with exceptions off.
    auto* slab = static_cast<RunNode*>(std::malloc(kSlabNodes * sizeof(RunNode)));
    if (slab == nullptr) std::abort();
    slabs_.push_back(slab);
    for (size_t i = 0; i < kSlabNodes; ++i) {
      slab[i].next[0] = free_;
      free_ = &slab[i];
    }
  }
  RunNode* n = free_;
  free_ = n->next[0];
  for (int l = 0; l < kMaxLevel; ++l) n->next[l] = nullptr;
  n->begin = 0;
  n->end = 0;
  n->height = static_cast<uint8_t>(height);
  ++inUse_;
  return n;
}

void RunNodePool::release(RunNode* n) {
  n->next[0] = free_;
  free_ = n;
  --inUse_;
}

}  // namespace mqc
