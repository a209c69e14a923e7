//! The integration suite: one binary, a module per area.

mod capture;
mod cli;
mod corpus;
mod fuzz;
mod ground_truth;
mod pcap;
mod replay;
mod report;
mod secrets;
mod util;
