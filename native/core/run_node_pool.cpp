#include "run_node_pool.hpp"

#include <cassert>
#include <cstdlib>

namespace mqc {

RunNodePool::~RunNodePool() {
  for (auto& slabs : slabs_)
    for (void* s : slabs) std::free(s);
  // Every list is gone before its pool (the core declares the pool before the queues).
  while (spareLists_ != nullptr) {
    void* next = *static_cast<void**>(spareLists_);
    std::free(spareLists_);
    spareLists_ = next;
  }
}

void* RunNodePool::acquireList(size_t bytes) {
  assert(bytes >= sizeof(void*) && (listBytes_ == 0 || listBytes_ == bytes));  // one size: the list's
  listBytes_ = bytes;
  if (spareLists_ != nullptr) {
    void* b = spareLists_;
    spareLists_ = *static_cast<void**>(b);
    --spareListCount_;
    return b;
  }
  void* b = std::malloc(bytes);  // as for slabs: no operator new with exceptions off
  if (b == nullptr) std::abort();
  ++listBlocks_;
  return b;
}

void RunNodePool::releaseList(void* block) {
  // The block is free storage now (its list was destroyed): it holds the link to the next spare.
  *static_cast<void**>(block) = spareLists_;
  spareLists_ = block;
  ++spareListCount_;
}

RunNode* RunNodePool::acquire(int height) {
  int c = classOf(height);
  if (free_[c] == nullptr) {
    // Nodes are trivially constructible; malloc keeps this allocation out of operator new, which
    // cannot report failure with exceptions off.
    size_t stride = strideOf(c);
    auto* slab = static_cast<char*>(std::malloc(kSlabNodes * stride));
    if (slab == nullptr) std::abort();
    slabs_[c].push_back(slab);
    for (size_t i = 0; i < kSlabNodes; ++i) {
      auto* n = reinterpret_cast<RunNode*>(slab + i * stride);
      n->next(0) = free_[c];
      free_[c] = n;
    }
  }
  RunNode* n = free_[c];
  free_[c] = n->next(0);
  for (int l = 0; l < height; ++l) n->next(l) = nullptr;
  n->begin = 0;
  n->end = 0;
  n->height = static_cast<uint8_t>(height);
  n->sizeClass = static_cast<uint8_t>(c);
  ++inUse_;
  return n;
}

void RunNodePool::release(RunNode* n) {
  int c = n->sizeClass;
  n->next(0) = free_[c];
  free_[c] = n;
  --inUse_;
}

size_t RunNodePool::bytesReserved() const {
  size_t bytes = 0;
  for (int c = 0; c < kClasses; ++c) bytes += slabs_[c].size() * kSlabNodes * strideOf(c);
  return bytes + listBlocks_ * listBytes_;
}

}  // namespace mqc
