#!/usr/bin/perl
#
# make-mmdb.pl - writes the MaxMind DB test fixtures of
# tests/unit/geoip_test.c into the directory given as the only argument.
# Needs only Debian 12's libmaxmind-db-writer-perl; the output is the same
# bytes on every run (fixed build_epoch, fixed insertion order; the writer
# sorts map keys).  All networks are documentation ranges (RFC 5737,
# RFC 3849), so reserved-network removal is switched off.
#
# country.mmdb  ip_version 6, record_size 24, type GeoLite2-Country, IPv4
#               aliased into IPv6 (::ffff:0:0/96, 2002::/16) like MaxMind's:
#   192.0.2.0/24       country NL (and registered_country NL)
#   198.51.100.0/24    country BR
#   203.0.113.0/24     registered_country JP only
#   2001:db8:1::/48    country DE
#   hostile or broken iso_code values, each must never come out as given:
#   2001:db8:bad:1::/64  country "X\r", registered_country FR  -> FR
#   2001:db8:bad:2::/64  country "NLD"                          -> ""
#   2001:db8:bad:3::/64  country "se"                           -> SE
#   2001:db8:bad:4::/64  country "\x{d6}" (2 bytes of UTF-8)    -> ""
#   2001:db8:bad:5::/64  country "N\0"                          -> ""
#   2001:db8:bad:6::/64  country without iso_code, names only   -> ""
# asn.mmdb      ip_version 6, record_size 24, type GeoLite2-ASN:
#   192.0.2.0/24       AS64500 "Test Net"
#   2001:db8:1::/48    AS64501 "Test Net 6"
# country4.mmdb ip_version 4, record_size 24, type DBIP-Country-Lite:
#   192.0.2.0/24       country NL (an IPv6 lookup here finds nothing)
#
# Usage: perl make-mmdb.pl DIR
use strict;
use warnings;

use MaxMind::DB::Writer::Tree;

my $dir = shift @ARGV or die "usage: $0 DIR\n";

# A fixed build time keeps the files reproducible.
my $EPOCH = 1700000000;

my %types = (
	country                        => 'map',
	registered_country             => 'map',
	iso_code                       => 'utf8_string',
	names                          => 'map',
	en                             => 'utf8_string',
	autonomous_system_number       => 'uint32',
	autonomous_system_organization => 'utf8_string',
);

sub tree {
	my ($ipv, $type) = @_;
	return MaxMind::DB::Writer::Tree->new(
		ip_version               => $ipv,
		record_size              => 24,
		database_type            => $type,
		languages                => ['en'],
		description              => { en => "portcullis test $type" },
		alias_ipv6_to_ipv4       => $ipv == 6 ? 1 : 0,
		remove_reserved_networks => 0,
		map_key_type_callback    => sub { $types{ $_[0] } },
		_build_epoch             => $EPOCH,
	);
}

sub write_db {
	my ($t, $name) = @_;
	my $path = "$dir/$name";
	open my $fh, '>:raw', $path or die "$path: $!\n";
	$t->write_tree($fh);
	close $fh or die "$path: $!\n";
}

my $c = tree(6, 'GeoLite2-Country');
$c->insert_network('192.0.2.0/24', {
	country            => { iso_code => 'NL' },
	registered_country => { iso_code => 'NL' },
});
$c->insert_network('198.51.100.0/24', { country => { iso_code => 'BR' } });
$c->insert_network('203.0.113.0/24',
    { registered_country => { iso_code => 'JP' } });
$c->insert_network('2001:db8:1::/48', { country => { iso_code => 'DE' } });
$c->insert_network('2001:db8:bad:1::/64', {
	country            => { iso_code => "X\r" },
	registered_country => { iso_code => 'FR' },
});
$c->insert_network('2001:db8:bad:2::/64', { country => { iso_code => 'NLD' } });
$c->insert_network('2001:db8:bad:3::/64', { country => { iso_code => 'se' } });
$c->insert_network('2001:db8:bad:4::/64',
    { country => { iso_code => "\x{d6}" } });
$c->insert_network('2001:db8:bad:5::/64', { country => { iso_code => "N\0" } });
$c->insert_network('2001:db8:bad:6::/64',
    { country => { names => { en => 'Nowhere' } } });
write_db($c, 'country.mmdb');

my $as = tree(6, 'GeoLite2-ASN');
$as->insert_network('192.0.2.0/24', {
	autonomous_system_number       => 64500,
	autonomous_system_organization => 'Test Net',
});
$as->insert_network('2001:db8:1::/48', {
	autonomous_system_number       => 64501,
	autonomous_system_organization => 'Test Net 6',
});
write_db($as, 'asn.mmdb');

my $c4 = tree(4, 'DBIP-Country-Lite');
$c4->insert_network('192.0.2.0/24', { country => { iso_code => 'NL' } });
write_db($c4, 'country4.mmdb');
