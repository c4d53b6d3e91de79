"""Data: mocli's HDF5 dataset format (``h5``), BVH motion capture (``bvh``, ``rigs``) and dataset converters
(``converters``: one module per dataset kind). Import the submodules directly, e.g.
``from mocli.data.h5 import open_dataset``."""
