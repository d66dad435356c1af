#!/usr/bin/perl
# Submit one transaction through Business::OnlinePayment::IPPay (Debian's
# libbusiness-onlinepayment-ippay-perl, unpatched) and print what the module read.
#
# stdin: a JSON object {"server": "127.x.y.z", "content": {...B::OP content...}}
# stdout: a JSON object {is_success, result_code, error_message, authorization,
#         order_number, avs_code, cvv2_response, died}
#
# The module builds its URL from server, port 443 and path /ippay; test_transaction(1)
# swaps the login for TESTTERMINAL and keeps any server that is not gtwy.ippay.com.
use strict;
use warnings;
use JSON::PP;
use Business::OnlinePayment;

my $json = JSON::PP->new->canonical;
my $input = $json->decode(do { local $/; <STDIN> });

my $tx = Business::OnlinePayment->new('IPPay');
$tx->server($input->{server});
$tx->test_transaction(1);
$tx->content(%{ $input->{content} });
my $ok = eval { $tx->submit(); 1 };

my %out = (died => $ok ? undef : "$@");
for my $field (qw(is_success result_code error_message authorization order_number avs_code cvv2_response)) {
    my $value = eval { $tx->$field() };
    $out{$field} = defined $value ? "$value" : undef;
}
print $json->encode(\%out);
