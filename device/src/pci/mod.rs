//! PCI configuration space and MSI-X, as a vfio-user server must present them.
