// A tied output projection: one weight read by ds.embed and ds.logits (test/passes/quant).
ds.weight @t : tensor<16x8xf32> {name = "t"}
func.func @forward(%ids: tensor<?xi32>) -> tensor<?x16xf32> {
  %h = ds.embed @t(%ids) : tensor<?xi32> -> tensor<?x8xf32>
  %l = ds.logits @t(%h) : tensor<?x8xf32> -> tensor<?x16xf32>
  return %l : tensor<?x16xf32>
}
