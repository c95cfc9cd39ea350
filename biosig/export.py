"""`python -m biosig.export`: the biosig-export command (biosig.cli.export), kept at the name it always had."""
if __name__ == "__main__":
    from biosig.cli import export
    export()
