// RUN: ds-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(ds-codegen-approximate-exp))' -verify-diagnostics | FileCheck %s

// A vector exp (the generated swiglu's silu) becomes the polynomial: floor, fma, the exponent
// bits, no math.exp left (so no libm call per lane after lowering).
// CHECK-LABEL: func.func @silu
// CHECK-NOT: math.exp
// CHECK: math.floor {{.*}} : vector<16xf32>
// CHECK: math.fma {{.*}} : vector<16xf32>
// CHECK: arith.shli {{.*}} : vector<16xi32>
// CHECK: arith.divf
// CHECK-NOT: math.exp
func.func @silu(%g: vector<16xf32>) -> vector<16xf32> {
  %n = arith.negf %g : vector<16xf32>
  %e = math.exp %n : vector<16xf32>
  %one = arith.constant dense<1.0> : vector<16xf32>
  %d = arith.addf %one, %e : vector<16xf32>
  %s = arith.divf %g, %d : vector<16xf32>
  return %s : vector<16xf32>
}

// -----

// Scalar f32 too (the masked tail's lanes are vectors as well, but a scalar loop may remain).
// CHECK-LABEL: func.func @scalar
// CHECK-NOT: math.exp
// CHECK: math.fma {{.*}} : f32
func.func @scalar(%x: f32) -> f32 {
  %e = math.exp %x : f32
  return %e : f32
}

// -----

// Negative: beside an f32 exp that is expanded, f64 exp and other math ops keep their libm
// lowering.
// CHECK-LABEL: func.func @others
// CHECK: math.exp {{.*}} : f64
// CHECK: math.sin {{.*}} : f32
// CHECK: math.tanh {{.*}} : vector<8xf32>
// CHECK-NOT: math.exp {{.*}} : vector<8xf32>
func.func @others(%x: f64, %y: f32, %z: vector<8xf32>) -> (f64, f32, vector<8xf32>, vector<8xf32>) {
  %e = math.exp %x : f64
  %s = math.sin %y : f32
  %t = math.tanh %z : vector<8xf32>
  %f = math.exp %z : vector<8xf32>
  return %e, %s, %t, %f : f64, f32, vector<8xf32>, vector<8xf32>
}
