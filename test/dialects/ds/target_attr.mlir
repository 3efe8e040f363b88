// RUN: ds-opt %s -split-input-file -verify-diagnostics | FileCheck %s

// #ds.target round-trips: the host at x86-64-v3 and a GPU row.
// CHECK: module attributes {ds.target = #ds.target<name = "host", backend = host, triple = "x86_64-unknown-linux-gnu", cpu = "x86-64-v3", features = ["sse4.2", "avx2", "fma"], vector_bits = 256>}
module attributes {ds.target = #ds.target<name = "host", backend = host, triple = "x86_64-unknown-linux-gnu", cpu = "x86-64-v3", features = ["sse4.2", "avx2", "fma"], vector_bits = 256>} {
}

// -----

// CHECK: #ds.target<name = "sm_90a", backend = nvptx, triple = "nvptx64-nvidia-cuda", cpu = "sm_90a", features = ["wgmma", "tma"], vector_bits = 128>
module attributes {ds.target = #ds.target<name = "sm_90a", backend = nvptx, triple = "nvptx64-nvidia-cuda", cpu = "sm_90a", features = ["wgmma", "tma"], vector_bits = 128>} {
}

// -----

// The SSE2 level: no features.
// CHECK: features = [], vector_bits = 128>
module attributes {ds.target = #ds.target<name = "host", backend = host, triple = "x86_64-unknown-linux-gnu", cpu = "x86-64", features = [], vector_bits = 128>} {
}

// -----

// expected-error @+1 {{#ds.target vector_bits must be a multiple of 32 in [32, 4096], got 100}}
module attributes {ds.target = #ds.target<name = "host", backend = host, triple = "x86_64-unknown-linux-gnu", cpu = "x86-64", features = [], vector_bits = 100>} {
}

// -----

// expected-error @+1 {{#ds.target triple 'x86_64-unknown-linux-gnu' is not an nvptx triple (backend = nvptx)}}
module attributes {ds.target = #ds.target<name = "sm_90a", backend = nvptx, triple = "x86_64-unknown-linux-gnu", cpu = "sm_90a", features = [], vector_bits = 128>} {
}

// -----

// expected-error @+1 {{#ds.target triple 'nvptx64-nvidia-cuda' is a GPU triple (backend = host)}}
module attributes {ds.target = #ds.target<name = "host", backend = host, triple = "nvptx64-nvidia-cuda", cpu = "x86-64", features = [], vector_bits = 128>} {
}

// -----

// expected-error @+1 {{#ds.target cpu 'x86-64' is not an SM version (sm_80, sm_90a, ...) (backend = nvptx)}}
module attributes {ds.target = #ds.target<name = "sm_90a", backend = nvptx, triple = "nvptx64-nvidia-cuda", cpu = "x86-64", features = [], vector_bits = 128>} {
}

// -----

// expected-error @+1 {{#ds.target features must be feature names ("avx2", not "+avx2"), got "+avx2"}}
module attributes {ds.target = #ds.target<name = "host", backend = host, triple = "x86_64-unknown-linux-gnu", cpu = "x86-64", features = ["+avx2"], vector_bits = 256>} {
}

// -----

// expected-error @+1 {{#ds.target features list 'avx2' twice}}
module attributes {ds.target = #ds.target<name = "host", backend = host, triple = "x86_64-unknown-linux-gnu", cpu = "x86-64", features = ["avx2", "avx2"], vector_bits = 256>} {
}

// -----

// expected-error @+1 {{#ds.target name must not be empty}}
module attributes {ds.target = #ds.target<name = "", backend = host, triple = "x86_64-unknown-linux-gnu", cpu = "x86-64", features = [], vector_bits = 128>} {
}

// -----

// An unknown backend is a parse error naming the value.
// expected-error @+2 {{expected one of [host, nvptx] for code generator family of a target, got: cpu}}
// expected-error @+1 {{failed to parse DS_TargetAttr parameter 'backend'}}
module attributes {ds.target = #ds.target<name = "host", backend = cpu, triple = "x86_64-unknown-linux-gnu", cpu = "x86-64", features = [], vector_bits = 128>} {
}

// -----

// ds.target holds a #ds.target, on a module only.
// expected-error @+1 {{'ds.target' must be a #ds.target attribute, got "host"}}
module attributes {ds.target = "host"} {
}

// -----

module {
  // expected-error @+1 {{'ds.target' belongs on a builtin.module}}
  func.func @f() attributes {ds.target = #ds.target<name = "host", backend = host, triple = "x86_64-unknown-linux-gnu", cpu = "x86-64", features = [], vector_bits = 128>} {
    return
  }
}
