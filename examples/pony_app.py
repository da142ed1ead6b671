"""A lending library written the way Pony applications are written.

The application below was written for Pony: its only nextorm-specific line is the import. With
``from pony.orm import *`` in its place it runs on Pony unchanged and prints the same report
(the test suite runs it both ways and compares the output line for line).

    python examples/pony_app.py
"""

from datetime import date, timedelta
from decimal import Decimal

from nextorm import *  # the one line that differs from the Pony version: from pony.orm import *

db = Database()


class Member(db.Entity):
    name = Required(str)
    email = Required(str, unique=True)
    joined = Required(date)
    loans = Set('Loan')
    reviews = Set('Review')
    favourite_genres = Set('Genre')


class Author(db.Entity):
    name = Required(str)
    born = Optional(int)
    books = Set('Book')


class Genre(db.Entity):
    name = PrimaryKey(str)
    books = Set('Book')
    fans = Set(Member)


class Book(db.Entity):
    isbn = PrimaryKey(str)
    title = Required(str)
    year = Required(int)
    price = Required(Decimal, precision=8, scale=2)
    authors = Set(Author)
    genres = Set(Genre)
    copies = Set('Copy', cascade_delete=True)
    reviews = Set('Review', cascade_delete=True)


class Copy(db.Entity):
    book = Required(Book)
    shelf = Required(str)
    number = Required(int)
    loans = Set('Loan', cascade_delete=True)
    composite_key(book, number)


class Loan(db.Entity):
    copy = Required(Copy)
    member = Required(Member)
    taken = Required(date)
    due = Required(date)
    returned = Optional(date)


class Review(db.Entity):
    book = Required(Book)
    member = Required(Member)
    stars = Required(int, min=1, max=5)
    text = Optional(str)
    PrimaryKey(book, member)


db.bind(provider='sqlite', filename=':memory:')
db.generate_mapping(create_tables=True)

START = date(2026, 1, 5)


@db_session
def populate():
    ada = Member(name='Ada', email='ada@example.org', joined=START)
    ben = Member(name='Ben', email='ben@example.org', joined=START + timedelta(days=3))
    cai = Member(name='Cai', email='cai@example.org', joined=START + timedelta(days=10))

    fiction = Genre(name='fiction')
    science = Genre(name='science')
    history = Genre(name='history')
    ada.favourite_genres = [fiction, history]
    ben.favourite_genres = [science]

    le_guin = Author(name='Ursula Le Guin', born=1929)
    sagan = Author(name='Carl Sagan', born=1934)
    druyan = Author(name='Ann Druyan', born=1949)
    tuchman = Author(name='Barbara Tuchman')

    books = [
        Book(isbn='978-0441478125', title='The Left Hand of Darkness', year=1969,
             price=Decimal('9.99'), authors=[le_guin], genres=[fiction]),
        Book(isbn='978-0060512750', title='The Dispossessed', year=1974,
             price=Decimal('11.50'), authors=[le_guin], genres=[fiction]),
        Book(isbn='978-0345376596', title='Pale Blue Dot', year=1994,
             price=Decimal('14.00'), authors=[sagan], genres=[science]),
        Book(isbn='978-0345384218', title='Shadows of Forgotten Ancestors', year=1992,
             price=Decimal('17.25'), authors=[sagan, druyan], genres=[science, history]),
        Book(isbn='978-0345476098', title='The Guns of August', year=1962,
             price=Decimal('12.75'), authors=[tuchman], genres=[history]),
    ]
    for book in books:
        for number in range(1, 3 if book.year < 1990 else 2):
            Copy(book=book, shelf=book.title[0], number=number)
    flush()

    taken = START + timedelta(days=14)
    for member, isbn in [(ada, '978-0441478125'), (ada, '978-0345476098'),
                         (ben, '978-0345376596'), (cai, '978-0441478125')]:
        copy = select(c for c in Copy if c.book.isbn == isbn and not exists(
            l for l in c.loans if l.returned is None)).order_by(Copy.number).first()
        Loan(copy=copy, member=member, taken=taken, due=taken + timedelta(days=21))

    Review(book=Book['978-0441478125'], member=ada, stars=5, text='Still astonishing')
    Review(book=Book['978-0441478125'], member=cai, stars=4)
    Review(book=Book['978-0345376596'], member=ben, stars=5, text='Humbling')
    Review(book=Book['978-0345476098'], member=ada, stars=3)


@db_session
def return_copy(member_email, isbn, on):
    loan = Loan.get(lambda l: l.member.email == member_email and l.copy.book.isbn == isbn
                    and l.returned is None)
    if loan is None:
        raise ObjectNotFound(Loan, (member_email, isbn))
    loan.returned = on
    return (on - loan.due).days


@db_session
def report():
    print('members by join date:', [m.name for m in Member.select().order_by(Member.joined)])
    print('books after 1970:', select(b.title for b in Book if b.year > 1970).order_by(1)[:])
    print('authors with several books:',
          select(a.name for a in Author if count(a.books) > 1).order_by(1)[:])
    print('books per genre:',
          select((g.name, count(g.books)) for g in Genre).order_by(1)[:])
    print('average price:', round(avg(b.price for b in Book), 2))
    print('most expensive:', Book.select().order_by(desc(Book.price)).first().title)
    print('copies on loan:', count(l for l in Loan if l.returned is None))
    print('overdue on 2026-02-20:',
          select((l.member.name, l.copy.book.title) for l in Loan
                 if l.returned is None and l.due < date(2026, 2, 20)).order_by(1, 2)[:])
    print('members who read what they like:', select(
        m.name for m in Member
        if exists(l for l in m.loans
                  if exists(g for g in l.copy.book.genres if g in m.favourite_genres))
    ).order_by(1)[:])
    print('mean stars per book:', [
        (title, float(stars)) for title, stars in
        select((r.book.title, avg(r.stars)) for r in Review).order_by(lambda t, s: (desc(s), t))
    ])
    print('reviewless books:', select(b.isbn for b in Book if not b.reviews).order_by(1)[:])
    print('second page of copies:',
          [(c.book.isbn, c.number) for c in Copy.select().order_by(Copy.id).page(2, pagesize=3)])
    print('members and open loans:', select(
        (m.name, count(l for l in m.loans if l.returned is None)) for m in Member).order_by(1)[:])
    print('readers per genre:', select((g.name, count(m)) for g in Genre for b in g.books
                                       for c in b.copies for l in c.loans for m in Member
                                       if l.member == m).order_by(1)[:])
    cheap = Book.select(lambda b: b.price < 12)
    print('cheap fiction:', cheap.filter(lambda b: 'fiction' in b.genres.name)
          .order_by(Book.title)[:].__len__())
    ada = Member.get(email='ada@example.org')
    print('ada as dict:', ada.to_dict(exclude=['joined'], with_collections=True,
                                      related_objects=False))


@db_session
def reprice(genre_name, percent):
    changed = 0
    for book in select(b for b in Book if genre_name in b.genres.name):
        book.price = (book.price * (100 + percent) / 100).quantize(Decimal('0.01'))
        changed += 1
    return changed


@db_session
def retire(isbn):
    Book[isbn].delete()


def main():
    populate()
    report()
    print('days late:', return_copy('ada@example.org', '978-0345476098', date(2026, 2, 25)))
    try:
        return_copy('ben@example.org', '978-0345476098', date(2026, 2, 25))
    except ObjectNotFound:
        print('no such loan')
    print('repriced:', reprice('science', 10))
    with db_session:
        print('science prices:', [f'{title}: {price:.2f}' for title, price in select(
            (b.title, b.price) for b in Book if 'science' in b.genres.name).order_by(1)])
    try:
        with db_session:
            Review(book=Book['978-0060512750'], member=Member.get(name='Ben'), stars=7)
    except ValueError:
        print('seven stars refused')
    retire('978-0441478125')
    with db_session:
        print('after retiring:', count(b for b in Book), count(c for c in Copy),
              count(l for l in Loan), count(r for r in Review))
        print('ada still reviews:', [r.book.title for r in Member.get(name='Ada').reviews])


if __name__ == '__main__':
    main()
