
ab"Relu