"""`python -m biosig.bandpower`: the biosig-bandpower command (biosig.cli.bandpower), kept at the name it always had."""
if __name__ == "__main__":
    from biosig.cli import bandpower
    bandpower()
