//! The two web applications of the evaluation, as data: RUBiS-like auction
//! site ([`rubis`]) and TPC-W-like bookstore ([`tpcw`]). Their interactions,
//! URL paths, navigation matrices, target mixes and data-scale rules are
//! defined here once; the guest applications serve them and the load
//! generator walks them, so the two cannot drift apart. `no_std` + `alloc`:
//! it builds for the guests and for the host alike. Sources of the numbers:
//! the design notes `rubis.md` and `tpcw.md` (public benchmark definitions).

#![no_std]

extern crate alloc;

pub mod rubis;
pub mod tpcw;
