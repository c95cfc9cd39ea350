"""`python -m biosig.convert`: the biosig-convert command (biosig.cli.convert), kept at the name it always had."""
if __name__ == "__main__":
    from biosig.cli import convert
    convert()
