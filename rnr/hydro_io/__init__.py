"""File formats of the hydrology: hydrofabric readers and the NetCDF writer."""
