"""The backends of the op contract ([N, C, L] inputs -> [G, C, T, 4] counts) and the registry
that picks one per call (registry.py):

* reference.py: plain PyTorch, O(N·T), the oracle;
* extension.py: the C++ ops of softset_fast._C (CPU, CUDA) and their fake kernels;
  op_checks.py, their argument checks in Python; cuda_check.py, the build's CUDA against torch's;
* triton_op.py, triton_kernels.py: the Triton op and its kernels; counts_autograd.py: the counts ops' autograd
  rule (Triton and C++); loss_autograd.py: the C++ ops' autograd.
"""
