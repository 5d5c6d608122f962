//! The LibreNMS tables ironpoll reads and writes, column for column as in
//! LibreNMS's schema, and their DDL for MariaDB and SQLite.
//!
//! In LibreNMS mode the tables already exist (LibreNMS's migrations made
//! them); ironpoll creates them for the embedded store, for tests and for
//! benchmarks. A test checks these definitions against LibreNMS's
//! `db_schema.yaml`.

use super::Dialect;

#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    /// The MySQL type as LibreNMS's schema dump spells it.
    pub ty: &'static str,
    pub nullable: bool,
    pub default: Option<&'static str>,
    /// `auto_increment`, `on update CURRENT_TIMESTAMP`, `VIRTUAL GENERATED`.
    pub extra: &'static str,
}

#[derive(Debug)]
pub struct Index {
    pub name: &'static str,
    pub columns: &'static [&'static str],
    pub unique: bool,
}

#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
    pub indexes: &'static [Index],
}

const fn c(
    name: &'static str,
    ty: &'static str,
    nullable: bool,
    default: Option<&'static str>,
    extra: &'static str,
) -> Column {
    Column {
        name,
        ty,
        nullable,
        default,
        extra,
    }
}

/// Expressions of LibreNMS's generated columns (from its migration).
fn generated_expression(table: &str, column: &str) -> Option<&'static str> {
    match (table, column) {
        ("device_stats", "ping_rtt_diff_avg_last") => Some("`ping_rtt_last` - `ping_rtt_avg`"),
        ("device_stats", "ping_rtt_diff_prev_last") => Some("`ping_rtt_last` - `ping_rtt_prev`"),
        _ => None,
    }
}

pub static TABLES: &[Table] = &[
    Table {
        name: "devices",
        columns: &[
            c("device_id", "int unsigned", false, None, "auto_increment"),
            c("inserted", "timestamp", true, Some("CURRENT_TIMESTAMP"), ""),
            c("hostname", "varchar(128)", false, None, ""),
            c("sysName", "varchar(128)", true, None, ""),
            c("display", "varchar(128)", false, Some(""), ""),
            c("display_template", "varchar(128)", true, None, ""),
            c("ip", "varbinary(16)", true, None, ""),
            c("overwrite_ip", "varchar(40)", true, None, ""),
            c("community", "varchar(255)", true, None, ""),
            c(
                "authlevel",
                "enum('noAuthNoPriv','authNoPriv','authPriv')",
                true,
                None,
                "",
            ),
            c("authname", "varchar(64)", true, None, ""),
            c("authpass", "varchar(64)", true, None, ""),
            c("authalgo", "varchar(10)", true, None, ""),
            c("cryptopass", "varchar(64)", true, None, ""),
            c("cryptoalgo", "varchar(10)", true, None, ""),
            c("snmpver", "varchar(4)", false, Some("v2c"), ""),
            c("port", "smallint unsigned", false, Some("161"), ""),
            c("transport", "varchar(16)", false, Some("udp"), ""),
            c("timeout", "int", true, None, ""),
            c("retries", "int", true, None, ""),
            c("snmp_disable", "tinyint", false, Some("0"), ""),
            c("bgpLocalAs", "int unsigned", true, None, ""),
            c("sysObjectID", "varchar(128)", true, None, ""),
            c("snmpEngineID", "varchar(128)", true, None, ""),
            c("sysDescr", "text", true, None, ""),
            c("sysContact", "text", true, None, ""),
            c("version", "text", true, None, ""),
            c("hardware", "text", true, None, ""),
            c("features", "text", true, None, ""),
            c("location_id", "int unsigned", true, None, ""),
            c("os", "varchar(32)", true, None, ""),
            c("status", "tinyint", false, Some("0"), ""),
            c("status_reason", "varchar(255)", false, None, ""),
            c("ignore", "tinyint", false, Some("0"), ""),
            c("disabled", "tinyint", false, Some("0"), ""),
            c("uptime", "bigint", true, None, ""),
            c("agent_uptime", "int unsigned", false, Some("0"), ""),
            c("last_polled", "timestamp", true, None, ""),
            c("last_poll_attempted", "timestamp", true, None, ""),
            c("last_polled_timetaken", "double unsigned", true, None, ""),
            c(
                "last_discovered_timetaken",
                "double unsigned",
                true,
                None,
                "",
            ),
            c("last_discovered", "timestamp", true, None, ""),
            c("last_ping", "timestamp", true, None, ""),
            c("last_ping_timetaken", "double unsigned", true, None, ""),
            c("purpose", "text", true, None, ""),
            c("type", "varchar(20)", false, Some(""), ""),
            c("serial", "text", true, None, ""),
            c("icon", "varchar(255)", true, None, ""),
            c("poller_group", "int", false, Some("0"), ""),
            c("override_sysLocation", "tinyint", true, Some("0"), ""),
            c("notes", "text", true, None, ""),
            c("port_association_mode", "int", false, Some("1"), ""),
            c("max_depth", "int", false, Some("0"), ""),
            c("disable_notify", "tinyint", false, Some("0"), ""),
            c("ignore_status", "tinyint", false, Some("0"), ""),
            c("mtu_status", "tinyint", false, Some("1"), ""),
        ],
        indexes: &[
            Index {
                name: "PRIMARY",
                columns: &["device_id"],
                unique: true,
            },
            Index {
                name: "devices_display_index",
                columns: &["display"],
                unique: false,
            },
            Index {
                name: "devices_hostname_sysname_display_index",
                columns: &["hostname", "sysName", "display"],
                unique: false,
            },
            Index {
                name: "devices_last_poll_attempted_index",
                columns: &["last_poll_attempted"],
                unique: false,
            },
            Index {
                name: "devices_last_polled_index",
                columns: &["last_polled"],
                unique: false,
            },
            Index {
                name: "devices_os_index",
                columns: &["os"],
                unique: false,
            },
            Index {
                name: "devices_status_index",
                columns: &["status"],
                unique: false,
            },
            Index {
                name: "devices_sysname_index",
                columns: &["sysName"],
                unique: false,
            },
        ],
    },
    Table {
        name: "devices_attribs",
        columns: &[
            c("attrib_id", "int unsigned", false, None, "auto_increment"),
            c("device_id", "int unsigned", false, None, ""),
            c("attrib_type", "varchar(64)", false, None, ""),
            c("attrib_value", "text", false, None, ""),
            c(
                "updated",
                "timestamp",
                false,
                Some("CURRENT_TIMESTAMP"),
                "on update CURRENT_TIMESTAMP",
            ),
        ],
        indexes: &[
            Index {
                name: "PRIMARY",
                columns: &["attrib_id"],
                unique: true,
            },
            Index {
                name: "devices_attribs_device_id_index",
                columns: &["device_id"],
                unique: false,
            },
        ],
    },
    Table {
        name: "device_relationships",
        columns: &[
            c("parent_device_id", "int unsigned", false, Some("0"), ""),
            c("child_device_id", "int unsigned", false, None, ""),
        ],
        indexes: &[
            Index {
                name: "PRIMARY",
                columns: &["parent_device_id", "child_device_id"],
                unique: true,
            },
            Index {
                name: "device_relationships_child_device_id_index",
                columns: &["child_device_id"],
                unique: false,
            },
        ],
    },
    Table {
        name: "ports",
        columns: &[
            c("port_id", "int unsigned", false, None, "auto_increment"),
            c("device_id", "int unsigned", false, Some("0"), ""),
            c("port_descr_type", "varchar(255)", true, None, ""),
            c("port_descr_descr", "varchar(255)", true, None, ""),
            c("port_descr_circuit", "varchar(255)", true, None, ""),
            c("port_descr_speed", "varchar(255)", true, None, ""),
            c("port_descr_notes", "varchar(255)", true, None, ""),
            c("ifDescr", "varchar(255)", true, None, ""),
            c("ifName", "varchar(255)", true, None, ""),
            c("portName", "varchar(128)", true, None, ""),
            c("ifIndex", "bigint", true, Some("0"), ""),
            c("ifSpeed", "bigint", true, None, ""),
            c("ifSpeed_prev", "bigint", true, None, ""),
            c("ifConnectorPresent", "varchar(12)", true, None, ""),
            c("ifOperStatus", "varchar(16)", true, None, ""),
            c("ifOperStatus_prev", "varchar(16)", true, None, ""),
            c("ifAdminStatus", "varchar(16)", true, None, ""),
            c("ifAdminStatus_prev", "varchar(16)", true, None, ""),
            c("ifDuplex", "varchar(12)", true, None, ""),
            c("ifMtu", "int", true, None, ""),
            c("ifType", "varchar(64)", true, None, ""),
            c("ifAlias", "varchar(255)", true, None, ""),
            c("ifPhysAddress", "varchar(64)", true, None, ""),
            c("ifLastChange", "bigint unsigned", false, Some("0"), ""),
            c("ifVlan", "varchar(8)", true, None, ""),
            c("ifTrunk", "varchar(16)", true, None, ""),
            c("ifVrf", "int", false, Some("0"), ""),
            c("ignore", "tinyint", false, Some("0"), ""),
            c("disabled", "tinyint", false, Some("0"), ""),
            c("deleted", "tinyint", false, Some("0"), ""),
            c("pagpOperationMode", "varchar(32)", true, None, ""),
            c("pagpPortState", "varchar(16)", true, None, ""),
            c("pagpPartnerDeviceId", "varchar(48)", true, None, ""),
            c("pagpPartnerLearnMethod", "varchar(16)", true, None, ""),
            c("pagpPartnerIfIndex", "int", true, None, ""),
            c("pagpPartnerGroupIfIndex", "int", true, None, ""),
            c("pagpPartnerDeviceName", "varchar(128)", true, None, ""),
            c("pagpEthcOperationMode", "varchar(16)", true, None, ""),
            c("pagpDeviceId", "varchar(48)", true, None, ""),
            c("pagpGroupIfIndex", "int", true, None, ""),
            c("ifInUcastPkts", "bigint unsigned", true, None, ""),
            c("ifInUcastPkts_prev", "bigint unsigned", true, None, ""),
            c("ifInUcastPkts_delta", "bigint unsigned", true, None, ""),
            c("ifInUcastPkts_rate", "bigint unsigned", true, None, ""),
            c("ifOutUcastPkts", "bigint unsigned", true, None, ""),
            c("ifOutUcastPkts_prev", "bigint unsigned", true, None, ""),
            c("ifOutUcastPkts_delta", "bigint unsigned", true, None, ""),
            c("ifOutUcastPkts_rate", "bigint unsigned", true, None, ""),
            c("ifInErrors", "bigint unsigned", true, None, ""),
            c("ifInErrors_prev", "bigint unsigned", true, None, ""),
            c("ifInErrors_delta", "bigint unsigned", true, None, ""),
            c("ifInErrors_rate", "bigint unsigned", true, None, ""),
            c("ifOutErrors", "bigint unsigned", true, None, ""),
            c("ifOutErrors_prev", "bigint unsigned", true, None, ""),
            c("ifOutErrors_delta", "bigint unsigned", true, None, ""),
            c("ifOutErrors_rate", "bigint unsigned", true, None, ""),
            c("ifInOctets", "bigint unsigned", true, None, ""),
            c("ifInOctets_prev", "bigint unsigned", true, None, ""),
            c("ifInOctets_delta", "bigint unsigned", true, None, ""),
            c("ifInOctets_rate", "bigint unsigned", true, None, ""),
            c("ifOutOctets", "bigint unsigned", true, None, ""),
            c("ifOutOctets_prev", "bigint unsigned", true, None, ""),
            c("ifOutOctets_delta", "bigint unsigned", true, None, ""),
            c("ifOutOctets_rate", "bigint unsigned", true, None, ""),
            c("poll_time", "int unsigned", true, None, ""),
            c("poll_prev", "int unsigned", true, None, ""),
            c("poll_period", "int unsigned", true, None, ""),
        ],
        indexes: &[
            Index {
                name: "PRIMARY",
                columns: &["port_id"],
                unique: true,
            },
            Index {
                name: "ports_device_id_ifindex_index",
                columns: &["device_id", "ifIndex"],
                unique: false,
            },
            Index {
                name: "ports_ifalias_port_descr_descr_portname_index",
                columns: &["ifAlias", "port_descr_descr", "portName"],
                unique: false,
            },
            Index {
                name: "ports_ifdescr_ifname_index",
                columns: &["ifDescr", "ifName"],
                unique: false,
            },
        ],
    },
    Table {
        name: "ports_statistics",
        columns: &[
            c("port_id", "int unsigned", false, None, ""),
            c("ifInNUcastPkts", "bigint unsigned", true, None, ""),
            c("ifInNUcastPkts_prev", "bigint unsigned", true, None, ""),
            c("ifInNUcastPkts_delta", "bigint", true, None, ""),
            c("ifInNUcastPkts_rate", "bigint", true, None, ""),
            c("ifOutNUcastPkts", "bigint unsigned", true, None, ""),
            c("ifOutNUcastPkts_prev", "bigint unsigned", true, None, ""),
            c("ifOutNUcastPkts_delta", "bigint", true, None, ""),
            c("ifOutNUcastPkts_rate", "bigint", true, None, ""),
            c("ifInDiscards", "bigint unsigned", true, None, ""),
            c("ifInDiscards_prev", "bigint unsigned", true, None, ""),
            c("ifInDiscards_delta", "bigint", true, None, ""),
            c("ifInDiscards_rate", "bigint", true, None, ""),
            c("ifOutDiscards", "bigint unsigned", true, None, ""),
            c("ifOutDiscards_prev", "bigint unsigned", true, None, ""),
            c("ifOutDiscards_delta", "bigint", true, None, ""),
            c("ifOutDiscards_rate", "bigint", true, None, ""),
            c("ifInUnknownProtos", "bigint unsigned", true, None, ""),
            c("ifInUnknownProtos_prev", "bigint unsigned", true, None, ""),
            c("ifInUnknownProtos_delta", "bigint", true, None, ""),
            c("ifInUnknownProtos_rate", "bigint", true, None, ""),
            c("ifInBroadcastPkts", "bigint unsigned", true, None, ""),
            c("ifInBroadcastPkts_prev", "bigint unsigned", true, None, ""),
            c("ifInBroadcastPkts_delta", "bigint", true, None, ""),
            c("ifInBroadcastPkts_rate", "bigint", true, None, ""),
            c("ifOutBroadcastPkts", "bigint unsigned", true, None, ""),
            c("ifOutBroadcastPkts_prev", "bigint unsigned", true, None, ""),
            c("ifOutBroadcastPkts_delta", "bigint", true, None, ""),
            c("ifOutBroadcastPkts_rate", "bigint", true, None, ""),
            c("ifInMulticastPkts", "bigint unsigned", true, None, ""),
            c("ifInMulticastPkts_prev", "bigint unsigned", true, None, ""),
            c("ifInMulticastPkts_delta", "bigint", true, None, ""),
            c("ifInMulticastPkts_rate", "bigint", true, None, ""),
            c("ifOutMulticastPkts", "bigint unsigned", true, None, ""),
            c("ifOutMulticastPkts_prev", "bigint unsigned", true, None, ""),
            c("ifOutMulticastPkts_delta", "bigint", true, None, ""),
            c("ifOutMulticastPkts_rate", "bigint", true, None, ""),
        ],
        indexes: &[Index {
            name: "PRIMARY",
            columns: &["port_id"],
            unique: true,
        }],
    },
    Table {
        name: "eventlog",
        columns: &[
            c("event_id", "int unsigned", false, None, "auto_increment"),
            c("device_id", "int unsigned", true, None, ""),
            c(
                "datetime",
                "datetime",
                false,
                Some("1970-01-02 00:00:01"),
                "",
            ),
            c("message", "text", true, None, ""),
            c("type", "varchar(64)", true, None, ""),
            c("reference", "varchar(64)", true, None, ""),
            c("username", "varchar(128)", true, None, ""),
            c("severity", "tinyint", false, Some("2"), ""),
        ],
        indexes: &[
            Index {
                name: "PRIMARY",
                columns: &["event_id"],
                unique: true,
            },
            Index {
                name: "eventlog_datetime_index",
                columns: &["datetime"],
                unique: false,
            },
            Index {
                name: "eventlog_device_id_index",
                columns: &["device_id"],
                unique: false,
            },
        ],
    },
    Table {
        name: "device_outages",
        columns: &[
            c("id", "bigint unsigned", false, None, "auto_increment"),
            c("device_id", "int unsigned", false, None, ""),
            c("going_down", "bigint", false, None, ""),
            c("up_again", "bigint", true, None, ""),
        ],
        indexes: &[
            Index {
                name: "PRIMARY",
                columns: &["id"],
                unique: true,
            },
            Index {
                name: "device_outages_device_id_going_down_unique",
                columns: &["device_id", "going_down"],
                unique: true,
            },
            Index {
                name: "device_outages_device_id_index",
                columns: &["device_id"],
                unique: false,
            },
            Index {
                name: "device_outages_going_down_index",
                columns: &["going_down"],
                unique: false,
            },
            Index {
                name: "device_outages_up_again_index",
                columns: &["up_again"],
                unique: false,
            },
        ],
    },
    Table {
        name: "device_stats",
        columns: &[
            c("id", "bigint unsigned", false, None, "auto_increment"),
            c("created_at", "timestamp", true, None, ""),
            c("updated_at", "timestamp", true, None, ""),
            c("device_id", "int unsigned", false, None, ""),
            c("ping_last_timestamp", "timestamp", true, None, ""),
            c("ping_rtt_last", "double unsigned", true, None, ""),
            c("ping_rtt_prev", "double unsigned", true, None, ""),
            c("ping_rtt_avg", "double unsigned", true, None, ""),
            c(
                "ping_rtt_diff_avg_last",
                "double",
                true,
                None,
                "VIRTUAL GENERATED",
            ),
            c(
                "ping_rtt_diff_prev_last",
                "double",
                true,
                None,
                "VIRTUAL GENERATED",
            ),
            c("ping_loss_last", "double unsigned", true, None, ""),
            c("ping_loss_prev", "double unsigned", true, None, ""),
            c("ping_loss_avg", "double unsigned", true, None, ""),
        ],
        indexes: &[
            Index {
                name: "PRIMARY",
                columns: &["id"],
                unique: true,
            },
            Index {
                name: "device_stats_device_id_unique",
                columns: &["device_id"],
                unique: true,
            },
        ],
    },
    Table {
        name: "device_graphs",
        columns: &[
            c("id", "bigint unsigned", false, None, "auto_increment"),
            c("device_id", "int unsigned", false, None, ""),
            c("graph", "varchar(255)", true, None, ""),
        ],
        indexes: &[
            Index {
                name: "PRIMARY",
                columns: &["id"],
                unique: true,
            },
            Index {
                name: "device_graphs_device_id_index",
                columns: &["device_id"],
                unique: false,
            },
        ],
    },
    Table {
        name: "availability",
        columns: &[
            c(
                "availability_id",
                "int unsigned",
                false,
                None,
                "auto_increment",
            ),
            c("device_id", "int unsigned", false, None, ""),
            c("duration", "bigint", false, None, ""),
            c(
                "availability_perc",
                "decimal(9,6)",
                false,
                Some("0.000000"),
                "",
            ),
        ],
        indexes: &[
            Index {
                name: "PRIMARY",
                columns: &["availability_id"],
                unique: true,
            },
            Index {
                name: "availability_device_id_duration_unique",
                columns: &["device_id", "duration"],
                unique: true,
            },
            Index {
                name: "availability_device_id_index",
                columns: &["device_id"],
                unique: false,
            },
        ],
    },
    Table {
        name: "config",
        columns: &[
            c("config_id", "int unsigned", false, None, "auto_increment"),
            c("config_name", "varchar(255)", false, None, ""),
            c("config_value", "mediumtext", false, None, ""),
        ],
        indexes: &[
            Index {
                name: "PRIMARY",
                columns: &["config_id"],
                unique: true,
            },
            Index {
                name: "config_config_name_unique",
                columns: &["config_name"],
                unique: true,
            },
        ],
    },
    Table {
        name: "poller_cluster",
        columns: &[
            c("id", "int unsigned", false, None, "auto_increment"),
            c("node_id", "varchar(255)", false, None, ""),
            c("poller_name", "varchar(255)", false, None, ""),
            c("poller_version", "varchar(255)", false, Some(""), ""),
            c("poller_groups", "varchar(255)", false, Some(""), ""),
            c("last_report", "datetime", false, None, ""),
            c("master", "tinyint", false, None, ""),
            c("poller_enabled", "tinyint", true, None, ""),
            c("poller_frequency", "int", true, None, ""),
            c("poller_workers", "int", true, None, ""),
            c("poller_down_retry", "int", true, None, ""),
            c("discovery_enabled", "tinyint", true, None, ""),
            c("discovery_frequency", "int", true, None, ""),
            c("discovery_workers", "int", true, None, ""),
            c("services_enabled", "tinyint", true, None, ""),
            c("services_frequency", "int", true, None, ""),
            c("services_workers", "int", true, None, ""),
            c("billing_enabled", "tinyint", true, None, ""),
            c("billing_frequency", "int", true, None, ""),
            c("billing_calculate_frequency", "int", true, None, ""),
            c("alerting_enabled", "tinyint", true, None, ""),
            c("alerting_frequency", "int", true, None, ""),
            c("ping_enabled", "tinyint", true, None, ""),
            c("ping_frequency", "int", true, None, ""),
            c("update_enabled", "tinyint", true, None, ""),
            c("update_frequency", "int", true, None, ""),
            c("loglevel", "varchar(8)", true, None, ""),
            c("watchdog_enabled", "tinyint", true, None, ""),
            c("watchdog_log", "varchar(255)", true, None, ""),
        ],
        indexes: &[
            Index {
                name: "PRIMARY",
                columns: &["id"],
                unique: true,
            },
            Index {
                name: "poller_cluster_node_id_unique",
                columns: &["node_id"],
                unique: true,
            },
        ],
    },
    Table {
        name: "poller_cluster_stats",
        columns: &[
            c("id", "int unsigned", false, None, "auto_increment"),
            c("parent_poller", "int unsigned", false, Some("0"), ""),
            c("poller_type", "varchar(64)", false, Some(""), ""),
            c("depth", "int unsigned", false, None, ""),
            c("devices", "int unsigned", false, None, ""),
            c("worker_seconds", "double", false, None, ""),
            c("workers", "int unsigned", false, None, ""),
            c("frequency", "int unsigned", false, None, ""),
        ],
        indexes: &[
            Index {
                name: "PRIMARY",
                columns: &["id"],
                unique: true,
            },
            Index {
                name: "poller_cluster_stats_parent_poller_poller_type_unique",
                columns: &["parent_poller", "poller_type"],
                unique: true,
            },
        ],
    },
];

pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// The MySQL type of a column, looked up in a map built once.
pub fn column_type(table: &str, column: &str) -> Option<&'static str> {
    type Types =
        rustc_hash::FxHashMap<&'static str, rustc_hash::FxHashMap<&'static str, &'static str>>;
    static TYPES: std::sync::OnceLock<Types> = std::sync::OnceLock::new();
    TYPES
        .get_or_init(|| {
            TABLES
                .iter()
                .map(|t| (t.name, t.columns.iter().map(|c| (c.name, c.ty)).collect()))
                .collect()
        })
        .get(table)?
        .get(column)
        .copied()
}

/// `CREATE TABLE IF NOT EXISTS` and index statements for every table.
pub fn ddl(dialect: Dialect) -> Vec<String> {
    TABLES.iter().flat_map(|t| table_ddl(t, dialect)).collect()
}

fn table_ddl(t: &Table, dialect: Dialect) -> Vec<String> {
    let mut lines: Vec<String> = t
        .columns
        .iter()
        .map(|col| column_ddl(t, col, dialect))
        .collect();
    let primary = t.indexes.iter().find(|i| i.name == "PRIMARY");
    let auto_pk = t.columns.iter().any(|c| c.extra == "auto_increment");
    if let Some(pk) = primary
        && !(dialect == Dialect::Sqlite && auto_pk)
    {
        lines.push(format!("PRIMARY KEY ({})", quoted(pk.columns)));
    }
    let mut out = Vec::new();
    let options = match dialect {
        Dialect::Mysql => " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
        Dialect::Sqlite => "",
    };
    out.push(format!(
        "CREATE TABLE IF NOT EXISTS `{}` (\n  {}\n){options}",
        t.name,
        lines.join(",\n  ")
    ));
    for ix in t.indexes.iter().filter(|i| i.name != "PRIMARY") {
        let unique = if ix.unique { "UNIQUE " } else { "" };
        out.push(match dialect {
            Dialect::Mysql => format!(
                "CREATE {unique}INDEX IF NOT EXISTS `{}` ON `{}` ({})",
                ix.name,
                t.name,
                quoted(ix.columns)
            ),
            // SQLite index names are global to the database.
            Dialect::Sqlite => format!(
                "CREATE {unique}INDEX IF NOT EXISTS `{}` ON `{}` ({})",
                ix.name,
                t.name,
                quoted(ix.columns)
            ),
        });
    }
    out
}

fn quoted(cols: &[&str]) -> String {
    cols.iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn column_ddl(t: &Table, col: &Column, dialect: Dialect) -> String {
    if let Some(expr) = generated_expression(t.name, col.name) {
        let ty = match dialect {
            Dialect::Mysql => col.ty,
            Dialect::Sqlite => "REAL",
        };
        return format!("`{}` {ty} GENERATED ALWAYS AS ({expr}) VIRTUAL", col.name);
    }
    match dialect {
        Dialect::Mysql => {
            let mut s = format!("`{}` {}", col.name, col.ty);
            s.push_str(if col.nullable { " NULL" } else { " NOT NULL" });
            match col.default {
                Some("CURRENT_TIMESTAMP") => s.push_str(" DEFAULT CURRENT_TIMESTAMP"),
                Some(d) => s.push_str(&format!(" DEFAULT {}", sql_literal(d))),
                None if col.nullable => s.push_str(" DEFAULT NULL"),
                None => {}
            }
            match col.extra {
                "auto_increment" => s.push_str(" AUTO_INCREMENT"),
                "on update CURRENT_TIMESTAMP" => s.push_str(" ON UPDATE CURRENT_TIMESTAMP"),
                _ => {}
            }
            s
        }
        Dialect::Sqlite => {
            if col.extra == "auto_increment" {
                return format!("`{}` INTEGER PRIMARY KEY AUTOINCREMENT", col.name);
            }
            let mut s = format!("`{}` {}", col.name, sqlite_type(col.ty));
            if !col.nullable {
                s.push_str(" NOT NULL");
            }
            match col.default {
                Some("CURRENT_TIMESTAMP") => s.push_str(" DEFAULT CURRENT_TIMESTAMP"),
                Some(d) => s.push_str(&format!(" DEFAULT {}", sql_literal(d))),
                None => {}
            }
            s
        }
    }
}

fn sql_literal(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

/// The SQLite storage class for a MySQL column type.
pub fn sqlite_type(mysql: &str) -> &'static str {
    let t = mysql.to_ascii_lowercase();
    if t.contains("int") {
        "INTEGER"
    } else if t.starts_with("double") || t.starts_with("float") || t.starts_with("decimal") {
        "REAL"
    } else if t.starts_with("varbinary") || t.contains("blob") {
        "BLOB"
    } else {
        "TEXT"
    }
}

/// Whether a column holds a point in time (read back as Unix seconds).
pub fn is_time(ty: &str) -> bool {
    ty == "timestamp" || ty == "datetime"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_a_primary_key_and_known_index_columns() {
        for t in TABLES {
            assert!(
                t.indexes.iter().any(|i| i.name == "PRIMARY"),
                "{} has no primary key",
                t.name
            );
            for ix in t.indexes {
                for col in ix.columns {
                    assert!(
                        t.columns.iter().any(|c| c.name == *col),
                        "{}.{} indexes unknown column {col}",
                        t.name,
                        ix.name
                    );
                }
            }
        }
    }

    #[test]
    fn ddl_renders_for_both_dialects() {
        let my = ddl(Dialect::Mysql).join(";\n");
        assert!(my.contains("`device_id` int unsigned NOT NULL AUTO_INCREMENT"));
        assert!(my.contains("`ping_rtt_diff_avg_last` double GENERATED ALWAYS AS"));
        let lite = ddl(Dialect::Sqlite).join(";\n");
        assert!(lite.contains("`port_id` INTEGER PRIMARY KEY AUTOINCREMENT"));
        assert!(lite.contains("`ifInOctets` INTEGER"));
    }
}
