# Rotation kernels: every vector path against the scalar reference.
