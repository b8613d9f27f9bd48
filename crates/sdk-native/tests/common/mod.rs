//! Test helpers shared by the native scenario tests.

#![allow(dead_code)]

pub mod fault_proxy;
