"""The component edge: the only modules that import what componentize-py
generates (`wit_world`, `componentize_py_types`), so they load only inside a
componentize-py build. Each world's module turns a plugin written on the SDK
into the class componentize-py exports:

    Handler = ipam.handler(MyIpam())                    # ipam world
    Admission = policy.admission(MyPolicy())            # policy world
    NetworkPolicy = netpol.network_policy(MyRules())    # netpol world
"""
