//! GeoIP lookups in a MaxMind-format database (GeoIP2/GeoLite2 City or Country, optionally
//! merged with ASN data). The whole database is read into memory at start-up, so a lookup is a
//! tree walk with no I/O.

use std::net::IpAddr;
use std::path::Path;

use maxminddb::Reader;
use serde::Deserialize;

/// What the database says about the network of one address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GeoInfo {
    /// Prefix length of the database network the address lies in: every address of that network
    /// has the same data, so an answer that depends on it holds for the whole network.
    pub prefix_len: u8,
    /// Autonomous system number.
    pub asn: Option<u32>,
    /// Continent code (`EU`).
    pub continent: Option<String>,
    /// ISO 3166-1 country code (`DE`).
    pub country: Option<String>,
    /// ISO 3166-2 subdivision codes, most general first (`US-CA`).
    pub subdivisions: Vec<String>,
}

/// The fields of a GeoIP2 City/Country record (and of an ASN record merged into it) that
/// request sources use.
#[derive(Deserialize)]
struct GeoRecord<'a> {
    #[serde(borrow, default)]
    continent: Option<Coded<'a>>,
    #[serde(borrow, default)]
    country: Option<Iso<'a>>,
    #[serde(borrow, default)]
    subdivisions: Vec<Iso<'a>>,
    #[serde(default)]
    autonomous_system_number: Option<u32>,
}

#[derive(Deserialize)]
struct Coded<'a> {
    #[serde(borrow, default)]
    code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Iso<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

/// An open GeoIP database.
#[derive(Debug)]
pub struct GeoIp {
    reader: Reader<Vec<u8>>,
}

/// Why a GeoIP database could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("GeoIP database: {0}")]
pub struct GeoIpError(#[from] maxminddb::MaxMindDbError);

impl GeoIp {
    /// Reads a database file into memory.
    pub fn open(path: &Path) -> Result<Self, GeoIpError> {
        Ok(Self {
            reader: Reader::open_readfile(path)?,
        })
    }

    /// Opens a database held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, GeoIpError> {
        Ok(Self {
            reader: Reader::from_source(bytes)?,
        })
    }

    /// Looks an address up. `None` when the lookup fails (a corrupt record); an address the
    /// database does not cover yields empty data with the prefix of the gap it lies in.
    pub fn lookup(&self, addr: IpAddr) -> Option<GeoInfo> {
        let result = self.reader.lookup(addr).ok()?;
        let prefix_len = result.network().ok()?.prefix();
        let Some(record) = result.decode::<GeoRecord<'_>>().ok()? else {
            return Some(GeoInfo {
                prefix_len,
                ..GeoInfo::default()
            });
        };
        let country = record.country.and_then(|c| c.iso_code);
        let subdivisions = match country {
            Some(cc) => record
                .subdivisions
                .iter()
                .filter_map(|s| s.iso_code)
                .map(|s| format!("{cc}-{s}"))
                .collect(),
            None => Vec::new(),
        };
        Some(GeoInfo {
            prefix_len,
            asn: record.autonomous_system_number,
            continent: record.continent.and_then(|c| c.code).map(str::to_owned),
            country: country.map(str::to_owned),
            subdivisions,
        })
    }
}
