#!/usr/bin/env python3
"""Writes bank-holidays.json: the UK bank holidays of each nation, in GOV.UK's format.

The dates are those GOV.UK publishes at https://www.gov.uk/bank-holidays.json (checked against
its 2019-2027 lists); years GOV.UK no longer lists, or has not yet published, follow the same
rules: the usual fixed and moving days, a substitute weekday when a holiday falls at a weekend,
and the one-off changes listed in ONE_OFFS. Run it again after adding a year or a one-off.
"""
import datetime as dt
import json
import sys

FIRST_YEAR, LAST_YEAR = 2018, 2028
# Years GOV.UK had not published when this file was made: dates follow the usual rules.
PROJECTED = {2028}


def easter(year):
    # Anonymous Gregorian algorithm (Meeus/Jones/Butcher).
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l) // 451
    month, day = divmod(h + l - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def first_monday(year, month):
    d = dt.date(year, month, 1)
    return d + dt.timedelta(days=(7 - d.weekday()) % 7)


def last_monday(year, month):
    d = dt.date(year, month + 1, 1) - dt.timedelta(days=1)
    return d - dt.timedelta(days=d.weekday())


def substitute(days):
    """Each (title, date) on a weekend moves to the next weekday not already taken."""
    taken, out = set(), []
    for title, d in sorted(days, key=lambda x: x[1]):
        if d.weekday() < 5 and d not in taken:
            taken.add(d)
            out.append((title, d, ""))
    for title, d in sorted(days, key=lambda x: x[1]):
        if d.weekday() >= 5:
            s = d
            while s.weekday() >= 5 or s in taken:
                s += dt.timedelta(days=1)
            taken.add(s)
            out.append((title, s, "Substitute day"))
    return sorted(out, key=lambda x: x[1])


def year_days(year, nation):
    e = easter(year)
    fixed = [("New Year’s Day", dt.date(year, 1, 1))]
    if nation == "scotland":
        fixed.append(("2nd January", dt.date(year, 1, 2)))
    if nation == "northern-ireland":
        fixed.append(("St Patrick’s Day", dt.date(year, 3, 17)))
        fixed.append(("Battle of the Boyne (Orangemen’s Day)", dt.date(year, 7, 12)))
    if nation == "scotland":
        fixed.append(("St Andrew’s Day", dt.date(year, 11, 30)))
    fixed += [("Christmas Day", dt.date(year, 12, 25)), ("Boxing Day", dt.date(year, 12, 26))]
    days = substitute(fixed)
    # When Christmas falls on a Saturday or Sunday GOV.UK gives Boxing Day (Monday 26th) its own
    # date and Christmas the substitute (Tuesday 27th): substitute() already does that.
    moving = [("Good Friday", e - dt.timedelta(days=2))]
    if nation != "scotland":
        moving.append(("Easter Monday", e + dt.timedelta(days=1)))
    moving.append(("Early May bank holiday", first_monday(year, 5)))
    moving.append(("Spring bank holiday", last_monday(year, 5)))
    summer = first_monday(year, 8) if nation == "scotland" else last_monday(year, 8)
    moving.append(("Summer bank holiday", summer))
    days += [(t, d, "") for t, d in moving]
    return days


# One-off changes by royal proclamation, for every nation.
def apply_one_offs(year, days):
    if year == 2020:
        days = [(t, d, n) for t, d, n in days if t != "Early May bank holiday"]
        days.append(("Early May bank holiday (VE day)", dt.date(2020, 5, 8), ""))
    if year == 2022:
        days = [(t, d, n) for t, d, n in days if t != "Spring bank holiday"]
        days.append(("Spring bank holiday", dt.date(2022, 6, 2), ""))
        days.append(("Platinum Jubilee bank holiday", dt.date(2022, 6, 3), ""))
        days.append(("Bank Holiday for the State Funeral of Queen Elizabeth II", dt.date(2022, 9, 19), ""))
    if year == 2023:
        days.append(("Bank holiday for the coronation of King Charles III", dt.date(2023, 5, 8), ""))
    return days


def main():
    out = {}
    for nation in ["england-and-wales", "scotland", "northern-ireland"]:
        events = []
        for year in range(FIRST_YEAR, LAST_YEAR + 1):
            days = apply_one_offs(year, year_days(year, nation))
            for title, d, notes in sorted(days, key=lambda x: x[1]):
                if year in PROJECTED:
                    notes = (notes + "; " if notes else "") + "Projected: not yet published by GOV.UK"
                events.append({"title": title, "date": d.isoformat(), "notes": notes})
        out[nation] = {"division": nation, "events": events}
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
