"""The currencies money may be in: ISO 4217 codes Stripe accepts for charges, lower case as
Stripe's API wants them (docs.stripe.com/currencies, "Supported presentment currencies").

A code outside this set could never be charged or paid out, so it is refused where a client
first names it (a project's pay, a payout run) with a 400 `unsupported_currency`, rather than
failing later at Stripe with money already promised.
"""

from __future__ import annotations

STRIPE_CURRENCIES = frozenset(
    """
    aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bif bmd bnd bob brl bsd bwp byn
    bzd cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip
    gmd gnf gtq gyd hkd hnl htg huf idr ils inr isk jmd jpy kes kgs khr kmf krw kyd kzt lak
    lbp lkr lrd lsl mad mdl mga mkd mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr
    nzd pab pen pgk php pkr pln pyg qar ron rsd rub rwf sar sbd scr sek sgd shp sle sos srd
    std szl thb tjs top try ttd twd tzs uah ugx usd uyu uzs vnd vuv wst xaf xcd xof xpf yer
    zar zmw
    """.split()  # noqa: SIM905  (a table reads better than 134 lines)
)


def is_supported_currency(code: object) -> bool:
    return isinstance(code, str) and code in STRIPE_CURRENCIES
