//! Results for people and CI: KTAP on the console, JUnit XML in a file.

pub mod junit;
pub mod ktap;
