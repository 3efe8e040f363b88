// RUN: ds-opt %s -split-input-file -verify-diagnostics

func.func @f(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{row of 64 elements cannot be viewed as 60}}
  %0 = ds.view %x : tensor<?x64xf32> -> tensor<?x4x15xf32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{element type changes from 'f32' to 'bf16'}}
  %0 = ds.view %x : tensor<?x64xf32> -> tensor<?x4x16xbf16>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{only the token dimension may be dynamic}}
  %0 = ds.view %x : tensor<?x64xf32> -> tensor<?x?x16xf32>
  return
}

// -----

func.func @f(%x: tensor<?x40xf32>) {
  // expected-error @+1 {{slice [32, 48) exceeds last dimension 40}}
  %0 = ds.slice %x [32, 16] : tensor<?x40xf32> -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%x: tensor<?x40xf32>) {
  // expected-error @+1 {{result last dimension must equal size 8}}
  %0 = ds.slice %x [32, 8] : tensor<?x40xf32> -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4x40xf32>) {
  // expected-error @+1 {{leading dimension 1 must be kept}}
  %0 = ds.slice %x [0, 8] : tensor<?x4x40xf32> -> tensor<?x2x8xf32>
  return
}
