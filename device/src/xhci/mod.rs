//! The xHCI host controller model (xHCI 1.2).
