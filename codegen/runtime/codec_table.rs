// The codecs of header, query and path values and the grammar (regular
// expression) each enforces. The code generator reads this table to check
// spec/headers.yaml and to pick codecs for parameter patterns; the generated
// runtime includes it, so the two can never disagree.

/// Every codec and the grammar it enforces.
pub const CODECS: &[(&str, &str)] = &[
    ("flag", "^(?i:true)$"),
    ("decimal", "^(0|[1-9][0-9]*)$"),
    ("decimal53", "^(0|[1-9][0-9]*)$"),
    ("offset", "^[0-9]{16}_[0-9]{16}$"),
    ("read-offset", "^(-1|now|[0-9]{16}_[0-9]{16})$"),
    (
        "timestamp",
        r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$",
    ),
    ("token", r"^[\x21-\x7E]+$"),
    ("text", r"^[\x20-\x7E]*$"),
    (
        "media-type",
        r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+( *;.*)?$",
    ),
    ("project", "^[A-Za-z0-9_-]{1,128}$"),
    ("id", "^[A-Za-z0-9_:.-]{1,256}$"),
];
