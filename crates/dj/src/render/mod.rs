//! Turning answers into text: terminal tables, the HTML report, CSV.

pub mod audit;
pub mod csv;
pub mod html;
pub mod metrics;
pub mod report;
pub mod rows;
pub mod table;
pub mod values;
