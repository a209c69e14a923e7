//! The integration suite: one binary, a module per area.

mod auth;
mod capture;
mod cli;
mod corpus;
mod fuzz;
mod ground_truth;
mod live;
mod pcap;
mod replay;
mod report;
mod secrets;
mod thresholds;
mod util;
